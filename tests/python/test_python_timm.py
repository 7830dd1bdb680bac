"""lrsched.timm.RemoteScheduler in timm's train.py call pattern, against the golden traces of
timm's own schedulers (tests/data/beyond-traces.jsonl, lines timm/...).

train.py calls `lr_scheduler.step_update(num_updates=num_updates)` after every optimizer update
and `lr_scheduler.step(epoch + 1, eval_metric)` at every epoch's end; the golden row k holds the
groups' lr after the k-th call that moves the schedule (step(k), or step_update(k) where
t_in_epochs is false). Every row, and the final state_dict, must be the golden one, bit for bit.
"""
import json
import os
import pathlib

import pytest

BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
pytestmark = pytest.mark.skipif(not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (run scripts/test.sh)")
import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()

import lrsched  # noqa: E402
from lrsched.timm import STATE_KEY, RemoteScheduler  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
UPDATES_PER_EPOCH = 3


def timm_cases():
    for i, line in enumerate((DATA / "beyond-traces.jsonl").read_text().splitlines()):
        if line.strip() and json.loads(line)["name"].startswith("timm/"):
            case = json.loads(line)
            yield pytest.param(case, id=f"{case['name']}:L{i + 1}")


class Optimizer:
    """What timm's schedulers see of a torch optimizer: its param_groups."""

    def __init__(self, spec):
        self.param_groups = [dict(g) for g in spec["param_groups"]]


def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def decode(v):
    if isinstance(v, dict):
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    if v in ("inf", "-inf", "nan"):
        return float(v)
    return v


def run_train_py(sched, opt, case, calls):
    """timm's train.py: updates, step_update after each; step(epoch + 1, metric) at each epoch's
    end. Returns the rows after each of `calls` schedule-moving calls (row 0 before any)."""
    metrics = case.get("metrics")
    by_update = not sched.t_in_epochs
    rows = [lrs(opt)]
    num_updates, epoch = 0, 0
    while len(rows) <= calls:
        for _ in range(UPDATES_PER_EPOCH):
            num_updates += 1
            sched.step_update(num_updates=num_updates)
            if by_update:
                rows.append(lrs(opt))
                if len(rows) > calls:
                    return rows
        metric = metrics[epoch] if metrics else None
        sched.step(epoch + 1, metric)
        epoch += 1
        if not by_update:
            rows.append(lrs(opt))
    return rows


@pytest.mark.parametrize("case", list(timm_cases()))
def test_golden_line_in_train_py_pattern(case, server, request):
    want = case["expected"]
    opt = Optimizer(case["optimizer"])
    name = "timm-" + request.node.callspec.id.replace("/", "-").replace(":", "-")
    kwargs = dict(name=name, server=server.address, optimizer_type=case["optimizer"]["type"])
    if want.get("error_at_step") == -1:
        with pytest.raises(lrsched.InvalidArgument) as e:
            RemoteScheduler(opt, case["scheduler"], **kwargs)
        assert "scheduler." in str(e.value)
        return
    with RemoteScheduler(opt, case["scheduler"], **kwargs) as sched:
        # `steps` rows; the state_dict is the one after the `steps`-th call.
        calls = case["steps"]
        if "error_at_step" in want:
            k = want["error_at_step"]
            rows = run_train_py(sched, opt, case, k)
            assert rows == want["lr"]
            with pytest.raises(lrsched.FailedPrecondition, match="math domain error"):
                run_train_py(sched, opt, case, k + 1)
            assert lrs(opt) == want["lr"][-1] and sched.t == k
            return
        rows = run_train_py(sched, opt, case, calls)
        assert rows[:-1] == want["lr"]
        sd = sched.state_dict()
        assert STATE_KEY in sd
        del sd[STATE_KEY]
        assert decode(sd) == decode(want["state_dict"])
        # timm's constructor leaves initial_lr in every group.
        assert all("initial_lr" in g for g in opt.param_groups)


@pytest.mark.parametrize("case", [c for c in timm_cases()
                                  if "error_at_step" not in c.values[0]["expected"]])
def test_checkpoint_mid_run_continues(case, server, request):
    """state_dict() mid-run, loaded into a new scheduler (a restarted trainer), continues bit for
    bit; so does timm's own state_dict, resumed as train.py does (step(start_epoch))."""
    want = case["expected"]["lr"]
    k = len(want) // 2
    base = "timm-ck-" + request.node.callspec.id.replace("/", "-").replace(":", "-")
    opt = Optimizer(case["optimizer"])
    kwargs = dict(server=server.address, optimizer_type=case["optimizer"]["type"])
    with RemoteScheduler(opt, case["scheduler"], name=base, **kwargs) as sched:
        run_train_py(sched, opt, case, k)
        sd = sched.state_dict()
        groups = [dict(g) for g in opt.param_groups]
    for variant in ("lrsched", "timm"):
        if variant == "timm" and case["scheduler"]["type"] == "timm.PlateauLRScheduler":
            continue  # timm's Plateau state_dict loses its counters, in timm too
        opt2 = Optimizer({"param_groups": groups})  # optimizer.load_state_dict(checkpoint)
        with RemoteScheduler(opt2, case["scheduler"], name=f"{base}-{variant}", **kwargs) as s2:
            if variant == "lrsched":
                s2.load_state_dict(sd)
            else:
                s2.load_state_dict({k2: v for k2, v in sd.items() if k2 != STATE_KEY})
                if s2.t_in_epochs:
                    s2.step(k)
                else:
                    s2.step_update(k)
            assert s2.t == k and lrs(opt2) == want[k]
            if s2.t_in_epochs:
                for e in range(k, len(want) - 1):
                    metrics = case.get("metrics")
                    s2.step(e + 1, metrics[e] if metrics else None)
                    assert lrs(opt2) == want[e + 1], (variant, e + 1)
            else:
                for u in range(k + 1, len(want)):
                    s2.step_update(u)
                    assert lrs(opt2) == want[u], (variant, u)


def test_lookahead_window_holds_the_golden_rows(client):
    """A deterministic timm session (noise included) answers GetLR windows with timm's values;
    Plateau is metric-driven, so it has none."""
    cases = {c.values[0]["name"]: c.values[0] for c in timm_cases()}
    for name in ("timm/Cosine-noise-normal", "timm/Poly-k_decay-cycles-step_update"):
        case = cases[name]
        session = "timm-window-" + name.replace("/", "-")
        s = client.create_session(session, {"optimizer": case["optimizer"],
                                            "scheduler": case["scheduler"]})
        assert s.deterministic
        want = case["expected"]["lr"]
        got = client.get_lr(session, window=len(want))
        assert [[g.lr for g in e.groups] for e in got.window] == want
    case = cases["timm/Plateau-max-warmup"]
    s = client.create_session("timm-window-plateau", {"optimizer": case["optimizer"],
                                                      "scheduler": case["scheduler"]})
    assert not s.deterministic
    with pytest.raises(lrsched.FailedPrecondition):
        client.get_lr("timm-window-plateau", window=3)


def test_metric_and_lr_scale_as_train_py_passes_them(server):
    """train.py passes the eval metric to every scheduler's step; timm keeps it in its
    state_dict. A group's lr_scale multiplies what is written; initial_lr stays unscaled."""
    opt = Optimizer({"param_groups": [{"lr": 0.1, "momentum": 0.9},
                                      {"lr": 0.1, "momentum": 0.9, "lr_scale": 0.5}]})
    spec = {"type": "CosineLRScheduler", "t_initial": 10}  # the "timm." prefix is optional
    with RemoteScheduler(opt, spec, name="timm-metric", server=server.address) as sched:
        sched.step_update(num_updates=1, metric=1.5)  # t_in_epochs: a no-op
        assert sched.t == 0 and lrs(opt) == [0.1, 0.05]
        sched.step(1, 0.25)
        assert sched.t == 1 and sched.state_dict()["metric"] == 0.25
        assert lrs(opt)[1] == lrs(opt)[0] * 0.5
        assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.1]
