"""lrsched.torch.RemoteLRScheduler with transformers' schedules ({"type":
"transformers.get_scheduler", ...}) against a real lrsched-server, driven the way transformers'
Trainer(optimizers=(opt, sched)) drives a scheduler it was given:

- every training step: `optimizer.step()`, then `lr_scheduler.step()`; the logged learning rate
  is `lr_scheduler.get_last_lr()[0]`; reduce_lr_on_plateau is stepped only after an evaluation,
  with the metric (`lr_scheduler.step(metrics[metric_to_check])`);
- a checkpoint saves `optimizer.state_dict()` and `lr_scheduler.state_dict()` (torch.save); a
  resumed run builds a new optimizer and scheduler, then calls `optimizer.load_state_dict()` and
  `lr_scheduler.load_state_dict()` before training on.

Each hf/ line of tests/data/beyond-traces.jsonl (transformers' own get_scheduler, traced) is
replayed and compared bit for bit (float ==): every group's lr at every step, the refusals
(construction: InvalidArgument; a step: FailedPrecondition at the same index), and the torch
state_dict at the end. Debian's python3-torch is used for the optimizer (transformers itself is
not needed: the Trainer's calls are made here in its order).
"""
import io
import itertools
import json
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"

if not os.environ.get("LRSCHED_BIN_DIR"):
    pytest.skip("LRSCHED_BIN_DIR is not set (the CMake build directory; run scripts/test.sh)",
                allow_module_level=True)
torch = pytest.importorskip("torch", reason="python3-torch is not installed for this interpreter")

import lrsched  # noqa: E402
from lrsched.torch import RemoteLRScheduler  # noqa: E402
from lrsched.transformers import get_scheduler  # noqa: E402


def hf_cases():
    out = []
    for i, line in enumerate((DATA / "beyond-traces.jsonl").read_text().splitlines()):
        if line.strip():
            case = json.loads(line)
            if case["name"].startswith("hf/"):
                out.append(pytest.param(case, id=f"{i + 1}:{case['name']}"))
    return out


HF = hf_cases()
_names = itertools.count(1)


def session_name(case):
    return f"hf-test/{case['name']}/{next(_names)}"


def make_optimizer(spec):
    """The optimizer the golden line names (SGD or AdamW; its default lr is the first group's),
    over a tiny model, one parameter tensor per group."""
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in spec["param_groups"]]
    groups = []
    for p, g in zip(params, spec["param_groups"]):
        g = dict(g)
        g["params"] = [p]
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    cls = torch.optim.SGD if spec["type"] == "SGD" else torch.optim.AdamW
    return cls(groups, lr=groups[0]["lr"])


def is_plateau(case):
    return case["scheduler"]["name"] == "reduce_lr_on_plateau"


PLATEAU = torch.optim.lr_scheduler.ReduceLROnPlateau


def train_step(opt, sched, case, i):
    """One Trainer step, as transformers' Trainer makes it: the optimizer steps, then the
    scheduler unless it is a ReduceLROnPlateau, which Trainer._evaluate steps with the metric
    (here: an evaluation after every step, its metric the golden line's)."""
    opt.step()
    if not isinstance(sched, PLATEAU):  # "Delay optimizer scheduling until metrics are generated"
        sched.step()
    if "metrics" in case and isinstance(sched, PLATEAU):
        sched.step(case["metrics"][i])  # Trainer._evaluate: step(metrics[metric_to_check])


def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def torch_state(sd):
    """torch's part of RemoteLRScheduler.state_dict() (what a torch scheduler reads)."""
    return {k: v for k, v in sd.items() if not k.startswith("_lrsched")}


def golden_state(sd):
    """A golden state_dict as torch holds it: the file writes non-finite floats as strings."""
    nonfinite = {"inf": float("inf"), "-inf": float("-inf")}
    return {k: nonfinite.get(v, v) if isinstance(v, str) else v for k, v in sd.items()}


def roundtrip(obj):
    """torch.save / torch.load, as the Trainer writes scheduler.pt and optimizer.pt."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf)


def via_get_scheduler(case, opt, name, client):
    """lrsched.transformers.get_scheduler with the golden line's arguments, as a user swaps it
    for transformers.get_scheduler (last_epoch travels inside the kwargs, as in transformers)."""
    cfg = case["scheduler"]
    kwargs = dict(cfg.get("scheduler_specific_kwargs") or {})
    if "last_epoch" in cfg:
        kwargs["last_epoch"] = cfg["last_epoch"]
    return get_scheduler(cfg["name"], opt, cfg.get("num_warmup_steps"),
                         cfg.get("num_training_steps"), kwargs, session=name, client=client)


@pytest.mark.parametrize("case", HF)
def test_trainer_loop_matches_transformers(case, client):
    want = case["expected"]
    opt = make_optimizer(case["optimizer"])
    name = session_name(case)
    if want.get("error_at_step") == -1:
        with pytest.raises(lrsched.InvalidArgument) as e:
            via_get_scheduler(case, opt, name, client)
        assert e.value.details
        with pytest.raises(lrsched.NotFound):
            client.get_session(name)
        return
    sched = via_get_scheduler(case, opt, name, client)
    assert isinstance(sched, RemoteLRScheduler)
    assert isinstance(sched, PLATEAU) == is_plateau(case)
    rows, failed_at = [], None
    for i in range(case["steps"]):
        rows.append(lrs(opt))
        if not is_plateau(case):
            assert sched.get_last_lr() == rows[-1]  # what the Trainer logs as learning_rate
        try:
            train_step(opt, sched, case, i)
            sched.flush()  # a pipelined step's refusal surfaces here at the latest
        except lrsched.FailedPrecondition as e:
            assert "ZeroDivisionError" in e.details
            failed_at = i
            break
    assert failed_at == want.get("error_at_step")
    assert rows == want["lr"]  # float ==: bit for bit
    if failed_at is not None:
        assert client.get_session(name).last_epoch == want["error_at_step"]
        return
    sd = sched.state_dict()
    assert torch_state(sd) == golden_state(want["state_dict"])
    sched.close()


@pytest.mark.parametrize("case", [c for c in HF if "error" not in c.values[0]["expected"]])
def test_trainer_checkpoint_and_resume_mid_run(case, client):
    """Save at step k as the Trainer does, resume in a new 'process' (new optimizer, new
    scheduler, both load_state_dict()), train on: the rows are transformers' own."""
    want = case["expected"]
    k = case["steps"] // 2
    name = session_name(case)
    opt = make_optimizer(case["optimizer"])
    sched = RemoteLRScheduler(opt, case["scheduler"], name=name, client=client)
    for i in range(k):
        train_step(opt, sched, case, i)
    opt_sd, sched_sd = roundtrip(opt.state_dict()), roundtrip(sched.state_dict())
    assert sched_sd["last_epoch"] == want["state_dict"]["last_epoch"] - (case["steps"] - k)
    # The session goes on elsewhere (the run that crashed after its checkpoint).
    for i in range(k, min(k + 3, case["steps"])):
        train_step(opt, sched, case, i)
    sched.close()

    opt2 = make_optimizer(case["optimizer"])
    sched2 = RemoteLRScheduler(opt2, case["scheduler"], name=name, client=client)
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sched_sd)
    rows = []
    for i in range(k, case["steps"]):
        rows.append(lrs(opt2))
        train_step(opt2, sched2, case, i)
    assert rows == want["lr"][k:]
    assert torch_state(sched2.state_dict()) == golden_state(want["state_dict"])
    sched2.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", [c for c in HF if "error" not in c.values[0]["expected"]
                                  and not is_plateau(c.values[0])])
def test_torch_state_dict_loads_into_torch_lambdalr(case, client):
    """The torch part of state_dict() is LambdaLR's: a torch LambdaLR loads it and continues
    from the same epoch; and a torch-only state_dict (no lrsched keys) restores the session."""
    name = session_name(case)
    opt = make_optimizer(case["optimizer"])
    sched = RemoteLRScheduler(opt, case["scheduler"], name=name, client=client)
    k = case["steps"] // 3
    for i in range(k):
        train_step(opt, sched, case, i)
    sd, opt_sd = torch_state(sched.state_dict()), roundtrip(opt.state_dict())
    ref = torch.optim.lr_scheduler.LambdaLR(make_optimizer(case["optimizer"]), lambda s: 1.0)
    ref.load_state_dict(dict(sd))
    assert ref.last_epoch == sched.last_epoch and ref.base_lrs == sd["base_lrs"]
    for i in range(k, k + 5):
        train_step(opt, sched, case, i)
    opt.load_state_dict(opt_sd)  # as with torch: the optimizer's groups first
    sched.load_state_dict(sd)  # torch's own format: lrsched puts the session back to epoch k
    sched.flush()
    assert sched.last_epoch == sd["last_epoch"]
    rows = []
    for i in range(k, case["steps"]):
        rows.append(lrs(opt))
        train_step(opt, sched, case, i)
    assert rows == case["expected"]["lr"][k:]
    sched.close()


def test_plateau_is_stepped_with_the_metric(client):
    case = next(c.values[0] for c in HF if is_plateau(c.values[0]))
    opt = make_optimizer(case["optimizer"])
    sched = RemoteLRScheduler(opt, case["scheduler"], name=session_name(case), client=client)
    assert sched.scheduler_type == "ReduceLROnPlateau" and isinstance(sched, PLATEAU)
    assert not sched.session.deterministic
    with pytest.raises(lrsched.FailedPrecondition) as e:
        sched.step()  # no metric: refused, nothing changes
    assert "metric" in e.value.details
    assert sched.last_epoch == 0 and lrs(opt) == case["expected"]["lr"][0]
    sched.close()


def test_unknown_name_lists_the_valid_ones(client):
    opt = make_optimizer({"type": "AdamW", "param_groups": [{"lr": 1e-3}]})
    with pytest.raises(lrsched.InvalidArgument) as e:
        RemoteLRScheduler(opt, {"type": "transformers.get_scheduler", "name": "cosine_annealing",
                                "num_warmup_steps": 1, "num_training_steps": 10},
                          name="hf-test/unknown", client=client)
    assert "scheduler.name" in e.value.details
    assert "warmup_stable_decay" in e.value.details and "cosine_with_min_lr" in e.value.details


@pytest.mark.parametrize("name,kwargs", [("polynomial", {}),
                                         ("cosine_with_min_lr", {"min_lr": 1e-5})])
def test_optimizer_defaults_lr_must_be_the_first_groups(client, name, kwargs):
    """transformers reads optimizer.defaults["lr"] there; lrsched the first group's lr: an
    optimizer whose defaults differ is refused before any session exists."""
    p = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    opt = torch.optim.AdamW([{"params": [p[0]], "lr": 1e-3}, {"params": [p[1]]}], lr=5e-4)
    with pytest.raises(ValueError, match="defaults"):
        get_scheduler(name, opt, 10, 100, kwargs, session="hf-test/defaults", client=client)
    with pytest.raises(lrsched.NotFound):
        client.get_session("hf-test/defaults")
    ok = torch.optim.AdamW([{"params": [p[0]], "lr": 1e-3}, {"params": [p[1]]}], lr=1e-3)
    sched = get_scheduler(name, ok, 10, 100, kwargs, session=f"hf-test/defaults-{name}",
                          client=client)
    assert sched.get_last_lr() == [0.0, 0.0]
    sched.close()
