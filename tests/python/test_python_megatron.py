"""lrsched.megatron.RemoteOptimizerParamScheduler in Megatron-LM's training-loop call pattern,
against a real lrsched-server: every mg/ line of tests/data/beyond-traces.jsonl (traced by
Megatron's own OptimizerParamScheduler) gives the same lr, betas[0] and weight_decay in the
optimizer's param groups, bit for bit, refusals included (at construction, or at the same
step), and the same state_dict; a trainer restarted from a mid-run checkpoint (a new scheduler
whose load_state_dict() gets the saved state_dict) continues bit-exactly.

Megatron's loop (megatron/training/training.py): the scheduler is built with the optimizer
(its constructor calls step(0)); each iteration runs forward/backward, optimizer.step(), then
opt_param_scheduler.step(increment=global batch size), or 1 where steps count iterations; a
checkpoint holds opt_param_scheduler.state_dict(), loaded back by load_state_dict().

Needs LRSCHED_BIN_DIR (the build directory); one server for the module; a few seconds.
"""
import itertools
import json
import pathlib

import pytest

from pyclient_server import skip_reason

if skip_reason():
    pytest.skip(skip_reason(), allow_module_level=True)

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402
from lrsched.megatron import RemoteOptimizerParamScheduler  # noqa: E402

try:
    import torch
except ImportError:  # the adapter needs no torch; the loop then runs on plain param groups
    torch = None

_names = itertools.count(1)


def mg_lines():
    for i, line in enumerate((DATA / "beyond-traces.jsonl").read_text().splitlines()):
        if line.strip() and json.loads(line)["name"].startswith("mg/"):
            yield pytest.param(json.loads(line), id=json.loads(line)["name"])


class PlainOptimizer:
    """Not torch: `param_groups` as Megatron's optimizer exposes them."""

    def __init__(self, groups):
        self.param_groups = [dict(g, betas=tuple(g["betas"])) for g in groups]

    def zero_grad(self):
        pass

    def step(self):
        pass


def make_optimizer(case):
    groups = case["optimizer"]["param_groups"]
    if torch is None:
        return PlainOptimizer(groups), None
    params = [torch.nn.Parameter(torch.ones(2)) for _ in groups]
    # Megatron's groups carry its overrides (max_lr, wd_mult, ...) beside torch's keys.
    opt = torch.optim.AdamW([dict(g, params=[p]) for g, p in zip(groups, params)])
    return opt, params


def train_step(opt, params):
    """Forward, backward, optimizer.step(): what Megatron's train_step does before the
    scheduler's step."""
    opt.zero_grad()
    if params is not None:
        sum((p * p).sum() for p in params).backward()
    opt.step()


def kwargs_of(case):
    """The scheduler's constructor arguments (the spec's, without lrsched's keys), and the
    increment the loop passes."""
    spec = dict(case["scheduler"])
    spec.pop("type")
    return spec, spec.pop("increment", 1)


def rows(opt):
    groups = opt.param_groups
    return ([g["lr"] for g in groups], [tuple(g["betas"])[0] for g in groups],
            [g["weight_decay"] for g in groups])


def run(case, sched, opt, params, increment, start, stop, got):
    """Iterations [start, stop) of Megatron's loop; returns the index of a refused step."""
    for k in range(start, stop):
        lr, momentum, wd = rows(opt)
        got["lr"].append(lr)
        got["momentum"].append(momentum)
        got["weight_decay"].append(wd)
        train_step(opt, params)
        try:
            sched.step(increment=increment)
        except lrsched.FailedPrecondition:
            return k
    return None


@pytest.mark.parametrize("case", list(mg_lines()))
def test_golden_line_in_megatrons_loop(case, client):
    want = case["expected"]
    kwargs, increment = kwargs_of(case)
    opt, params = make_optimizer(case)
    name = f"mg/{next(_names)}"
    if want.get("error_at_step") == -1:
        with pytest.raises(lrsched.InvalidArgument) as e:
            RemoteOptimizerParamScheduler(opt, **kwargs, name=name, client=client,
                                          optimizer_type="AdamW")
        assert "scheduler." in str(e.value)
        return
    sched = RemoteOptimizerParamScheduler(opt, **kwargs, name=name, client=client,
                                          optimizer_type="AdamW")
    got = {"lr": [], "momentum": [], "weight_decay": []}
    refused_at = run(case, sched, opt, params, increment, 0, case["steps"], got)
    assert refused_at == want.get("error_at_step")
    n = len(want["lr"])
    assert got["lr"][:n] == want["lr"]
    assert got["momentum"][:n] == want["momentum"]
    assert got["weight_decay"][:n] == want["weight_decay"]
    if refused_at is not None:
        # The refused step changed nothing: the groups still hold the last values.
        assert list(rows(opt)[0]) == want["lr"][-1]
        return
    assert sched.state_dict() == want["state_dict"]
    assert sched.num_steps == want["state_dict"]["num_steps"]
    # get_lr / get_wd as Megatron's: the group's lr; the weight decay before wd_mult.
    for i, g in enumerate(opt.param_groups):
        assert sched.get_lr(g) == g["lr"]
        mult = case["optimizer"]["param_groups"][i].get("wd_mult", 1.0)
        assert sched.get_wd(g) * mult == g["weight_decay"]


@pytest.mark.parametrize("case", [c for c in mg_lines()
                                  if "error_at_step" not in c.values[0]["expected"]])
def test_restart_from_a_mid_run_checkpoint(case, client):
    """Save state_dict() at half the run; a new trainer (fresh optimizer, a new scheduler on a
    new session, as after losing the old one) loads it and continues to the golden values."""
    want = case["expected"]
    kwargs, increment = kwargs_of(case)
    half = case["steps"] // 2
    opt, params = make_optimizer(case)
    sched = RemoteOptimizerParamScheduler(opt, **kwargs, name=f"mg/{next(_names)}",
                                          client=client, optimizer_type="AdamW")
    got = {"lr": [], "momentum": [], "weight_decay": []}
    assert run(case, sched, opt, params, increment, 0, half, got) is None
    checkpoint = json.loads(json.dumps(sched.state_dict()))  # as a checkpoint file holds it
    assert set(checkpoint) == set(want["state_dict"])  # Megatron's keys, no others

    opt2, params2 = make_optimizer(case)
    restarted = RemoteOptimizerParamScheduler(opt2, **kwargs, name=f"mg/{next(_names)}",
                                              client=client, optimizer_type="AdamW")
    assert restarted.num_steps == 0
    restarted.load_state_dict(checkpoint)
    assert restarted.num_steps == checkpoint["num_steps"]
    assert run(case, restarted, opt2, params2, increment, half, case["steps"], got) is None
    assert got["lr"] == want["lr"]
    assert got["weight_decay"] == want["weight_decay"]
    assert restarted.state_dict() == want["state_dict"]


def test_ranks_stepping_from_the_same_num_steps_advance_once(client):
    case = next(c.values[0] for c in mg_lines() if c.values[0]["name"] == "mg/linear")
    kwargs, _ = kwargs_of(case)
    name = f"mg/{next(_names)}"
    ranks = []
    for _ in range(3):
        opt, _params = make_optimizer(case)
        ranks.append((opt, RemoteOptimizerParamScheduler(opt, **kwargs, name=name,
                                                         client=client,
                                                         optimizer_type="AdamW")))
    for _ in range(4):
        for _opt, sched in ranks:
            sched.step(increment=8)
    for opt, sched in ranks:
        assert sched.num_steps == 32
        assert rows(opt)[0] == want_row(case, 32)


def want_row(case, n):
    return case["expected"]["lr"][n]


def test_increment_is_validated(client):
    case = next(c.values[0] for c in mg_lines() if c.values[0]["name"] == "mg/linear")
    kwargs, _ = kwargs_of(case)
    opt, _params = make_optimizer(case)
    sched = RemoteOptimizerParamScheduler(opt, **kwargs, name=f"mg/{next(_names)}",
                                          client=client, optimizer_type="AdamW")
    with pytest.raises(lrsched.InvalidArgument, match="increment"):
        sched.step(increment=0)
    assert sched.num_steps == 0
    # torch's types take no increment.
    client.create_session("mg/torch-type", {
        "optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
        "scheduler": {"type": "StepLR", "step_size": 2}})
    with pytest.raises(lrsched.FailedPrecondition, match="increment"):
        client.step("mg/torch-type", increment=2)


def test_client_values_carry_weight_decay(client):
    """Client.simulate's SimulateResult and GetLR's GroupValues carry the served weight_decay
    (None for torch's types); RemoteLRScheduler writes it into the param groups."""
    from lrsched.torch import RemoteLRScheduler
    case = next(c.values[0] for c in mg_lines()
                if c.values[0]["name"] == "mg/cosine-two-groups-overrides-wd-linear")
    spec = {"optimizer": case["optimizer"], "scheduler": case["scheduler"]}
    sim = client.simulate(spec, case["steps"])
    assert sim.weight_decay == case["expected"]["weight_decay"]
    assert sim.lr == case["expected"]["lr"]
    torch_sim = client.simulate({"optimizer": {"type": "SGD", "param_groups": [
        {"lr": 0.1, "weight_decay": 0.01}]}, "scheduler": {"type": "StepLR", "step_size": 2}}, 3)
    assert torch_sim.weight_decay is None
    name = f"mg/{next(_names)}"
    client.create_session(name, spec)
    window = client.get_lr(name, window=4).window
    assert client.get_lr(name, ahead=3).epoch == 3 and client.get_lr(name).epoch == 0
    # Step and Watch replies carry it too.
    stream = client.watch(name, timeout=10)
    assert [g.weight_decay for g in next(stream).groups] == case["expected"]["weight_decay"][0]
    stepped = client.step(name, if_epoch=0).session
    assert [g.weight_decay for g in stepped.groups] == case["expected"]["weight_decay"][1]
    assert [g.weight_decay for g in next(stream).groups] == case["expected"]["weight_decay"][1]
    stream.close()
    samples = next(c.values[0] for c in mg_lines()
                   if c.values[0]["name"] == "mg/samples-increment-32")
    client.create_session(name + "-samples", {"optimizer": samples["optimizer"],
                                              "scheduler": samples["scheduler"]})
    got = client.get_lr(name + "-samples", ahead=3)
    assert got.epoch == 96 and [g.lr for g in got.groups] == samples["expected"]["lr"][3]
    assert [[g.weight_decay for g in w.groups] for w in window] == \
        case["expected"]["weight_decay"][:4]

    opt = PlainOptimizer(case["optimizer"]["param_groups"])
    with RemoteLRScheduler(opt, case["scheduler"], name=f"mg/{next(_names)}", client=client,
                           optimizer_type="AdamW") as sched:
        for k in range(case["steps"]):
            assert [g["weight_decay"] for g in opt.param_groups] == \
                case["expected"]["weight_decay"][k], k
            assert [g["lr"] for g in opt.param_groups] == case["expected"]["lr"][k], k
            sched.step()


def test_remote_lr_scheduler_refuses_increments_it_cannot_follow(client):
    from lrsched.torch import RemoteLRScheduler
    case = next(c.values[0] for c in mg_lines() if c.values[0]["name"] == "mg/samples-increment-32")
    with pytest.raises(ValueError, match="RemoteOptimizerParamScheduler"):
        RemoteLRScheduler(PlainOptimizer(case["optimizer"]["param_groups"]), case["scheduler"],
                          name=f"mg/{next(_names)}", client=client)
