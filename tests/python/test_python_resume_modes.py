"""New run or resume, and resume from an older checkpoint, against a real lrsched-server
(issue #15, 2 and 3; the killed-job test with torch is test_python_resume.py).

RemoteLRScheduler(resume="auto"|"must"|"never"), the refusal of a finished schedule to a new
run, AlreadyExists naming the first difference, an optimizer restored before or after the
scheduler is built, the ResumeWarning, resume_epoch, and load_state_dict() changing the session
once per launch however many ranks load the checkpoint. The "ranks" are scheduler objects in
this process with an explicit launch_id. Needs LRSCHED_BIN_DIR; no torch; about a second.
"""
import copy
import itertools
import warnings

import pytest

from pyclient_server import skip_reason

if skip_reason():
    pytest.skip(skip_reason(), allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402
from lrsched._resume import ResumeWarning  # noqa: E402
from lrsched.torch import RemoteLRScheduler  # noqa: E402

COSINE = {"type": "CosineAnnealingLR", "T_max": 20, "eta_min": 0.001}
ONECYCLE = {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 3}
_names = itertools.count(1)


def fresh_name():
    return f"resume/{next(_names)}"


class Opt:
    """Not torch: an SGD-like optimizer's `param_groups`."""

    def __init__(self, groups=None):
        self.param_groups = groups or [{"lr": 0.1, "momentum": 0.9}]

    def restored(self):
        """A copy as optimizer.load_state_dict() of a checkpoint of this one leaves it."""
        return Opt(copy.deepcopy(self.param_groups))


# `server` and `client`: conftest.py (one server for the module).


def sched(client, opt, name, cfg=COSINE, **kw):
    # Synchronous steps: these tests read the session from other ranks right after a step(),
    # which pipelined steps reach only once acknowledged (test_python_resume.py runs the same
    # restarts with pipelining on, as a training job does).
    kw.setdefault("pipeline", False)
    return RemoteLRScheduler(opt, cfg, name=name, client=client, **kw)


def run_to(client, name, epoch, cfg=COSINE):
    """A first run stepped to `epoch`: its optimizer, and its lrs per epoch."""
    opt = Opt()
    s = sched(client, opt, name, cfg)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(epoch):
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    return s, opt, lrs


def test_never_refuses_an_existing_session_and_says_how_to_delete_it(client):
    name = fresh_name()
    ranks = [sched(client, Opt(), name, resume="never", launch_id="new-run") for _ in range(3)]
    assert all(r.last_epoch == 0 for r in ranks)  # one launch's ranks share the new session
    ranks[0].step()
    with pytest.raises(lrsched.AlreadyExists) as e:
        sched(client, Opt(), name, resume="never", launch_id="next-run")
    msg = str(e.value)
    assert name in msg and "epoch 1" in msg and "delete_session" in msg and "another name" in msg


def test_must_needs_the_session(client):
    with pytest.raises(lrsched.NotFound, match="no session .* to resume"):
        sched(client, Opt(), fresh_name(), resume="must")
    name = fresh_name()
    run_to(client, name, 2)
    assert sched(client, Opt(), name, resume="must").last_epoch == 2


def test_a_new_run_refuses_a_finished_schedule(client):
    name = fresh_name()
    run_to(client, name, 3, ONECYCLE)  # OneCycleLR at total_steps
    with pytest.raises(lrsched.FailedPrecondition, match="has finished its schedule"):
        sched(client, Opt(), name, ONECYCLE)
    name = fresh_name()
    run_to(client, name, 2, ONECYCLE)  # not finished: a restart continues
    assert sched(client, Opt(), name, ONECYCLE).last_epoch == 2


def test_already_exists_names_the_first_difference_and_attach(client):
    name = fresh_name()
    run_to(client, name, 1)
    with pytest.raises(lrsched.AlreadyExists) as e:
        sched(client, Opt(), name, dict(COSINE, T_max=30))
    assert "spec.scheduler.T_max: 30 here, 20 in the session" in str(e.value)
    assert "attach=True" in str(e.value)
    with pytest.raises(lrsched.AlreadyExists, match=r"optimizer.param_groups\[0\].lr: 0.2"):
        sched(client, Opt([{"lr": 0.2, "momentum": 0.9}]), name)
    assert sched(client, Opt(), name, dict(COSINE, T_max=30), attach=True).last_epoch == 1


@pytest.mark.parametrize("order", ["before", "after"])
def test_optimizer_restored_before_or_after_the_scheduler_resumes_exactly(client, order):
    name = fresh_name()
    first, opt, want = run_to(client, name, 5)
    ckpt = {"optimizer": opt.restored(), "scheduler": first.state_dict()}
    for _ in range(3):
        first.step()  # the session moves on to 8; the job dies
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResumeWarning)
        if order == "before":
            opt = ckpt["optimizer"].restored()  # its lr is epoch 5's: no attach=True needed
            s = sched(client, opt, name, launch_id=f"{name}-2")
        else:
            opt = Opt()
            s = sched(client, opt, name, launch_id=f"{name}-2")
            opt.param_groups = ckpt["optimizer"].restored().param_groups
        s.load_state_dict(ckpt["scheduler"])
        assert s.last_epoch == 5 and opt.param_groups[0]["lr"] == want[5]
        s.step()
    assert s.last_epoch == 6 and client.get_session(name).last_epoch == 6
    _, _, oracle = run_to(client, fresh_name(), 7)
    assert opt.param_groups[0]["lr"] == oracle[6]


@pytest.mark.parametrize("order", ["before", "after"])
def test_attaching_at_another_epoch_warns_once_with_both_epochs(client, order):
    name = fresh_name()
    first, opt, _ = run_to(client, name, 5)
    restored = opt.restored()
    for _ in range(3):
        first.step()
    if order == "before":
        s = sched(client, restored, name)
    else:
        s = sched(client, Opt(), name)
        s.optimizer.param_groups = restored.param_groups
    with pytest.warns(ResumeWarning) as w:
        s.step()
    assert len(w) == 1
    msg = str(w[0].message)
    assert "is at epoch 8" in msg and "those of epoch 5" in msg
    assert "load_state_dict" in msg and "resume_epoch=5" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResumeWarning)
        s.step()  # once
        sched(client, restored.restored(), name).step()  # once per session and process


def test_resume_epoch_puts_the_session_at_that_epoch(client):
    name = fresh_name()
    first, opt, want = run_to(client, name, 8)
    ranks = [sched(client, Opt(), name, resume_epoch=5, launch_id=f"{name}-2") for _ in "ab"]
    assert [r.last_epoch for r in ranks] == [5, 5]
    assert [r.optimizer.param_groups[0]["lr"] for r in ranks] == [want[5]] * 2
    ranks[0].step()
    ranks[1].step()  # adopts rank 0's step: one rewind, one step
    assert client.get_session(name).last_epoch == 6
    assert ranks[1].optimizer.param_groups[0]["lr"] == want[6]


def test_load_changes_the_session_once_per_launch(client):
    name = fresh_name()
    first, opt, want = run_to(client, name, 5)
    ckpt = first.state_dict()
    for _ in range(3):
        first.step()
        want.append(opt.param_groups[0]["lr"])
    r0, r1, r2 = (sched(client, Opt(), name, launch_id="launch-2") for _ in range(3))
    r0.load_state_dict(ckpt)
    revision = client.get_session(name).revision
    r0.step()  # rank 0 is already on at 6 when rank 1 loads
    r1.load_state_dict(ckpt)
    assert r1.last_epoch == 5 and r1.optimizer.param_groups[0]["lr"] == want[5]
    assert client.get_session(name).last_epoch == 6  # not rewound again
    assert client.get_session(name).revision == revision + 1  # one import, one step
    r1.step()
    assert not r1.advanced and r1.last_epoch == 6
    r2.load_state_dict(ckpt)
    r2.step()
    assert r2.optimizer.param_groups[0]["lr"] == want[6]
    labels = client.get_session(name).labels
    assert labels["lrsched.resume/launch"] == "launch-2"
    assert labels["lrsched.resume/checkpoint"] == ckpt["_lrsched_resume"]["id"]
    # The next launch restoring the same checkpoint (the job died again at 6) rewinds again.
    again = sched(client, Opt(), name, launch_id="launch-3")
    again.load_state_dict(ckpt)
    assert client.get_session(name).last_epoch == 5
    again.step()
    assert again.optimizer.param_groups[0]["lr"] == want[6]


def test_state_dict_identifies_the_state(client):
    name = fresh_name()
    s, _, _ = run_to(client, name, 4)
    sd = s.state_dict()
    rec = sd["_lrsched_resume"]
    session = client.get_session(name)
    assert (rec["name"], rec["epoch"], rec["revision"]) == (name, 4, session.revision)
    assert rec["groups"] == [[g.lr, g.momentum] for g in session.groups]
    assert sd["last_epoch"] == 4 and sd["_lrsched_state"]["spec"]  # torch's keys, full state


def test_state_dict_refuses_a_rank_not_at_the_sessions_epoch(client):
    name = fresh_name()
    r0, r1 = (sched(client, Opt(), name) for _ in range(2))
    r0.step()  # rank 1 is one step behind the session: its checkpoint would not match
    with pytest.raises(lrsched.FailedPrecondition, match="at epoch 0, session .* at 1"):
        r1.state_dict()
    r1.step()  # adopts rank 0's step
    assert r1.state_dict()["_lrsched_resume"]["epoch"] == 1


def test_an_attached_scheduler_is_collected_without_waiting_for_gc(client):
    import gc
    import weakref
    name = fresh_name()
    run_to(client, name, 2)
    s = sched(client, Opt(), name)
    assert "step" in vars(s)  # the first step()'s check is pending
    ref = weakref.ref(s)
    gc.disable()
    try:
        del s
        assert ref() is None  # no reference cycle keeps it (and its client) alive
    finally:
        gc.enable()
