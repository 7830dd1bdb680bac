"""Changing a running schedule from Python (issue #18), against a real lrsched-server:
Client.amend() of every kind checked against REAL torch (skipped, visibly, without it):
- continue_with: a CosineAnnealingLR cooled down with LinearLR at a chosen epoch = torch
  constructing LinearLR on an optimizer holding the session's lrs and momentums then, stepped;
- reparameterize: T_max extended, OneCycleLR's total_steps extended = a fresh torch trace of
  the new spec read from at_epoch on (not torch's last_epoch resume);
- scale: torch's values times the factor, for the groups named;
then dry runs, Client.history() and its pages, bad arguments, RemoteLRScheduler.amend(), and
several ranks (followers with lookahead windows, a pipelined owner) stepping while amendments
land: each serves the amended values from their epoch on, never a stale cached one.

Needs LRSCHED_BIN_DIR (the build directory); one server for the module (conftest.py).
"""
import itertools
import math
import time

import pytest

from pyclient_server import skip_reason

if skip_reason():
    pytest.skip(skip_reason(), allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402
from lrsched.torch import RemoteLRScheduler  # noqa: E402

_names = itertools.count(1)


def fresh_name(prefix="amend"):
    return f"{prefix}/{next(_names)}"


def sgd_spec(scheduler, lrs=(0.1,), momentum=0.9):
    return {"optimizer": {"type": "SGD",
                          "param_groups": [{"lr": lr, "momentum": momentum} for lr in lrs]},
            "scheduler": scheduler}


def torch_trace(torch, spec, steps, *, lrs=None, momentums=None):
    """[(lrs, momentums)] at epochs 0..steps of `spec` built by real torch (its optimizer's
    groups hold `lrs`/`momentums` when given, else the spec's)."""
    groups = spec["optimizer"]["param_groups"]
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))],
               "lr": lrs[i] if lrs else g["lr"],
               "momentum": momentums[i] if momentums else g.get("momentum", 0.0)}
              for i, g in enumerate(groups)]
    opt = torch.optim.SGD(params, lr=params[0]["lr"])
    kwargs = {k: v for k, v in spec["scheduler"].items() if k != "type"}
    sched = getattr(torch.optim.lr_scheduler, spec["scheduler"]["type"])(opt, **kwargs)
    out = []
    for i in range(steps + 1):
        out.append(([g["lr"] for g in opt.param_groups],
                    [g["momentum"] for g in opt.param_groups]))
        if i < steps:
            opt.step()
            sched.step()
    return out


def served(client, name, first, last):
    """{epoch: (lrs, momentums)} from the session's record."""
    h = client.history(name, from_epoch=first, to_epoch=last)
    return {e.epoch: ([g.lr for g in e.groups], [g.momentum for g in e.groups])
            for e in h.epochs}


def step_to(client, name, epoch):
    s = client.get_session(name)
    while s.last_epoch < epoch:
        s = client.step(name, if_epoch=s.last_epoch).session
    return s


# -- every kind against real torch ----------------------------------------------------------

def test_continue_with_cools_down_like_torch_linear_lr(client):
    torch = pytest.importorskip("torch")
    name = fresh_name()
    cosine = {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": 0.0}
    spec = sgd_spec(cosine, lrs=(0.1, 0.05))
    client.create_session(name, spec)
    step_to(client, name, 30)
    cool = {"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.0, "total_iters": 20}
    r = client.amend(name, continue_with=cool, at_epoch=40, reason="cool down at 40")
    assert not r.amendment.applied and r.amendment.kind == "continue_with"
    step_to(client, name, 65)
    before = torch_trace(torch, spec, 40)
    lrs40, moms40 = before[40]
    cooled = torch_trace(torch, {"optimizer": spec["optimizer"], "scheduler": cool}, 25,
                         lrs=lrs40, momentums=moms40)
    got = served(client, name, 0, 65)
    for e in range(0, 41):
        assert got[e] == before[e], e
    for e in range(40, 66):
        assert got[e] == cooled[e - 40], e
    assert got[60][0] == [0.0, 0.0]
    h = client.history(name)
    assert [(a.kind, a.at_epoch, a.reason, a.applied) for a in h.amendments] == [
        ("continue_with", 40, "cool down at 40", True)]


def test_reparameterize_extends_t_max_like_a_fresh_torch_trace(client):
    torch = pytest.importorskip("torch")
    name = fresh_name()
    spec = sgd_spec({"type": "CosineAnnealingLR", "T_max": 50, "eta_min": 0.001})
    client.create_session(name, spec)
    step_to(client, name, 20)
    old = torch_trace(torch, spec, 20)
    longer = sgd_spec({"type": "CosineAnnealingLR", "T_max": 80, "eta_min": 0.001})
    fresh = torch_trace(torch, longer, 70)
    r = client.amend(name, set={"T_max": 80}, reason="extend")
    assert r.amendment.applied and r.amendment.at_epoch == 20
    # The curve jumps at 20 (the new schedule's value there); the reply says by how much.
    assert r.amendment.jump[0] == pytest.approx(fresh[20][0][0] - old[20][0][0], abs=1e-15)
    assert r.session.lrs == fresh[20][0]
    step_to(client, name, 70)
    got = served(client, name, 21, 70)
    for e in range(21, 71):
        assert got[e] == fresh[e], e


def test_reparameterize_one_cycle_total_steps(client):
    torch = pytest.importorskip("torch")
    name = fresh_name()
    one_cycle = {"type": "OneCycleLR", "max_lr": 1.0, "total_steps": 50}
    spec = sgd_spec(one_cycle)
    client.create_session(name, spec)
    step_to(client, name, 10)
    client.amend(name, set={"total_steps": 100}, at_epoch=12, reason="more data")
    step_to(client, name, 90)  # past the original 50 steps, which torch would refuse
    old = torch_trace(torch, spec, 12)
    fresh = torch_trace(torch, sgd_spec(dict(one_cycle, total_steps=100)), 90)
    got = served(client, name, 0, 90)
    for e in range(0, 12):
        assert got[e] == old[e], e
    for e in range(12, 91):
        assert got[e] == fresh[e], e  # lr and momentum (cycle_momentum)


def test_scale_multiplies_the_named_groups(client):
    torch = pytest.importorskip("torch")
    name = fresh_name()
    spec = sgd_spec({"type": "StepLR", "step_size": 3, "gamma": 0.5}, lrs=(0.1, 0.2, 0.4))
    client.create_session(name, spec)
    step_to(client, name, 5)
    r = client.amend(name, scale=0.5, groups=[1, 2], reason="spike")
    assert r.amendment.args == {"factor": 0.5, "groups": [1, 2]}
    step_to(client, name, 12)
    ref = torch_trace(torch, spec, 12)
    got = served(client, name, 0, 12)
    for e in range(13):
        lrs, _ = ref[e]
        want = lrs if e < 5 else [lrs[0], lrs[1] * 0.5, lrs[2] * 0.5]
        assert got[e][0] == want, e


# -- dry runs, the record, bad input ----------------------------------------------------------

def test_dry_run_changes_nothing_and_shows_both_futures(client):
    name = fresh_name()
    client.create_session(name, sgd_spec({"type": "CosineAnnealingLR", "T_max": 40}))
    s = step_to(client, name, 4)
    r = client.amend(name, scale=0.5, dry_run=True, window=6)
    assert [e.epoch for e in r.current] == [4, 5, 6, 7, 8, 9]
    assert [e.epoch for e in r.amended] == [4, 5, 6, 7, 8, 9]
    assert [e.lrs[0] * 0.5 for e in r.current] == [e.lrs[0] for e in r.amended]
    after = client.get_session(name)
    assert (after.revision, after.schedule_revision) == (s.revision, s.schedule_revision)
    assert client.history(name).amendments == []


def test_history_reads_every_page(client):
    name = fresh_name()
    client.create_session(name, sgd_spec({"type": "CosineAnnealingLR", "T_max": 40}))
    step_to(client, name, 25)
    whole = client.history(name)
    paged = client.history(name, page_size=7)
    assert [e.epoch for e in whole.epochs] == list(range(26)) == [e.epoch for e in paged.epochs]
    assert whole.epochs == paged.epochs and whole.first_epoch == 0
    part = client.history(name, from_epoch=10, to_epoch=12)
    assert [e.epoch for e in part.epochs] == [10, 11, 12]
    assert part.spec["scheduler"]["T_max"] == 40


def test_bad_arguments_name_what_is_wrong(client):
    name = fresh_name()
    client.create_session(name, sgd_spec({"type": "CosineAnnealingLR", "T_max": 40}))
    step_to(client, name, 5)
    for kwargs, word in [({}, "exactly one"), ({"scale": 0.5, "set": {"T_max": 3}}, "exactly one"),
                         ({"scale": 0.0}, "scale"), ({"scale": math.nan}, "scale"),
                         ({"scale": -2}, "scale"), ({"set": {"T_max": 3}, "groups": [0]}, "groups"),
                         ({"scale": 0.5, "groups": [-1]}, "groups"),
                         ({"scale": 0.5, "at_epoch": -1}, "at_epoch"),
                         ({"continue_with": "not json"}, "continue_with"),
                         ({"set": {}}, "set"), ({"scale": 0.5, "window": 10**6}, "window")]:
        with pytest.raises(ValueError, match=word):
            client.amend(name, **kwargs)
    with pytest.raises(lrsched.FailedPrecondition, match="past|epoch"):
        client.amend(name, scale=0.5, at_epoch=2)
    with pytest.raises(lrsched.InvalidArgument, match="no_such_argument"):
        client.amend(name, set={"no_such_argument": 1})
    with pytest.raises(lrsched.InvalidArgument):
        client.amend(name, continue_with={"type": "NoSuchLR"})
    with pytest.raises(lrsched.Aborted):
        client.amend(name, scale=0.5, if_revision=1)
    client.delete_session(name)
    with pytest.raises(lrsched.NotFound):
        client.amend(name, scale=0.5)
    other = fresh_name()  # the server keeps serving
    assert client.create_session(other, sgd_spec({"type": "StepLR", "step_size": 2})).lrs == [0.1]


# -- RemoteLRScheduler and caches -------------------------------------------------------------

class Opt:
    """Not torch: SGD-like `param_groups` with momentum."""

    def __init__(self, groups=1):
        self.param_groups = [{"lr": 0.1 * (g + 1), "momentum": 0.9} for g in range(groups)]


def test_scheduler_amend_writes_the_values_in_force_at_once(server):
    opt = Opt()
    name = fresh_name()
    with RemoteLRScheduler(opt, {"type": "CosineAnnealingLR", "T_max": 30}, name=name,
                           server=server.address) as sched:
        for _ in range(5):
            sched.step()
        before = opt.param_groups[0]["lr"]
        r = sched.amend(scale=0.5, reason="spike")
        assert r.amendment.applied and opt.param_groups[0]["lr"] == before * 0.5
        sched.step()
        assert sched.session.schedule_revision == r.session.schedule_revision
        assert opt.param_groups[0]["lr"] == sched.client.get_session(name).lrs[0]


def test_no_rank_serves_a_stale_cached_value_after_an_amendment(server):
    """A pipelined owner and 4 followers (lookahead windows of 64 epochs) step in lockstep while
    an operator amends the session twice, each time a few epochs ahead of it (inside the
    windows the ranks hold). Every rank's values at every epoch are the record's.

    The operator acts between two epochs (as during a long training step), so at_epoch is
    ahead of every rank by `ahead` epochs of at least 5 ms each: the time the Watch streams
    have to deliver it (README "Caches see amendments"). An amendment for the very next epoch
    can reach a pipelined rank one step late; the test does not ask for that."""
    ahead = 6
    name = fresh_name("stale")
    spec = {"type": "CosineAnnealingLR", "T_max": 400}
    owner = RemoteLRScheduler(Opt(2), spec, name=name, server=server.address)
    followers = [RemoteLRScheduler(Opt(2), spec, name=name, server=server.address, follow=True,
                                   window=64) for _ in range(4)]
    ranks = [owner] + followers
    seen = [{0: [g["lr"] for g in r.optimizer.param_groups]} for r in ranks]
    amendments = {10: {"scale": 0.25, "reason": "spike"},
                  30: {"set": {"T_max": 40}, "reason": "shorter"}}
    done = []

    def amend(e):
        with lrsched.Client(server.address) as op:
            # The owner's last Step may still be in flight: last_epoch is e or e - 1.
            at = op.get_session(name).last_epoch + ahead
            op.amend(name, at_epoch=at, **amendments[e])
            done.append(at)

    try:
        for e in range(1, 61):
            for i, r in enumerate(ranks):
                r.step()
                assert r.last_epoch == e
                seen[i][e] = [g["lr"] for g in r.optimizer.param_groups]
            if e in amendments:
                amend(e)
            time.sleep(0.005)  # a training step; the watch delivers meanwhile
        owner.flush()
    finally:
        for r in ranks:
            r.close()
    assert len(done) == 2
    with lrsched.Client(server.address) as c:
        record = {e.epoch: e.lrs for e in c.history(name).epochs}
    assert len(record) == 61
    for i in range(len(ranks)):
        for e in range(61):
            assert seen[i][e] == record[e], (i, e, done)
    # The amendments changed what was served from their epochs on.
    assert record[done[0]] != record[done[0] - 1]
