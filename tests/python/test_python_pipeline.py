"""RemoteLRScheduler's pipelined step() (client/python/lrsched/_pipeline.py) against a real
lrsched-server: step() applies the next values from the lookahead window it holds and sends the
conditional Step without waiting for it; the acknowledgement is checked before the next Step
(max_pending=1: by the next step()), and what went wrong is raised by the next step() with the
values corrected from the server: a refused Step, a lost compare (another writer stepped the
session), a schedule changed by another writer, a Step lost to a server killed with SIGKILL.

Needs LRSCHED_BIN_DIR (the build directory); one server for the module (one more for the kill
test); runs in a few seconds.
"""
import itertools
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pyclient_server import Server, free_port, skip_reason

if skip_reason():
    pytest.skip(skip_reason(), allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402
from lrsched.torch import RemoteLRScheduler  # noqa: E402

COSINE = {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 0.001}
_names = itertools.count(1)


def fresh_name(prefix="pipe"):
    return f"{prefix}/{next(_names)}"


class Opt:
    """Not torch: SGD-like `param_groups` with momentum."""

    def __init__(self, lr=0.1):
        self.param_groups = [{"lr": lr, "momentum": 0.9}]


def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


# `server` and `client`: conftest.py (one server for the module).


def test_pipelined_steps_are_exact_and_step_once(client, server):
    name = fresh_name()
    n = 150  # more than two lookahead windows (64)
    opt = Opt()
    with RemoteLRScheduler(opt, COSINE, name=name, server=server.address) as sched:
        assert sched._pipeline is not None
        created = client.get_session(name)
        ref = client.simulate(sched.spec, n + 1)
        for i in range(1, n + 1):
            sched.step()
            assert sched.last_epoch == i and lrs(opt) == ref.lr[i]  # float ==: bit for bit
        sched.flush()
        assert sched.advanced
    s = client.get_session(name)
    # Exactly one plain step per step(): the epoch and one revision per step.
    assert s.last_epoch == n and s.revision == created.revision + n


@pytest.mark.parametrize("pause", [0.0, 0.002, 0.3])
def test_steps_reach_the_server_whatever_the_pace(client, server, pause):
    """step() wakes the sender thread (sleeping on a lock, not a condition): whether the steps
    come back to back or after a pause, each one reaches the server promptly (flush() waits for
    its acknowledgement)."""
    name = fresh_name()
    opt = Opt()
    with RemoteLRScheduler(opt, COSINE, name=name, server=server.address) as sched:
        for i in range(1, 6):
            time.sleep(pause)
            sched.step()
            t0 = time.monotonic()
            sched.flush()
            assert time.monotonic() - t0 < 5.0
            assert client.get_session(name).last_epoch == i


def test_step_does_not_wait_for_the_server(client, server):
    """With the server stopped (SIGSTOP), a pipelined step() still returns at once with the
    window's value; its Step lands once the server runs again. (A synchronous step would wait
    for the server.)"""
    name = fresh_name()
    opt = Opt()
    with RemoteLRScheduler(opt, COSINE, name=name, server=server.address) as sched:
        sched.step()
        sched.flush()  # the window is held, nothing in flight
        ref = client.simulate(sched.spec, 3)
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            sched.step()
            took = time.monotonic() - t0
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert took < 0.5, took
        assert sched.last_epoch == 2 and lrs(opt) == ref.lr[2]
        sched.flush()
        assert client.get_session(name).last_epoch == 2


def _stepped_state(client, scheduler, steps):
    """The exported state of a scratch session of `scheduler` stepped `steps` times."""
    other = fresh_name("scratch")
    client.create_session(other, {"optimizer": {"type": "SGD", "param_groups": [
        {"lr": 0.1, "momentum": 0.9}]}, "scheduler": scheduler})
    for _ in range(steps):
        client.step(other)
    return client.export_state(other).state


def test_refused_step_is_raised_by_the_next_step(client, server):
    """Another writer puts a OneCycleLR at its last step under the session: the pipelined Step
    (sent with if_epoch = 2, which matches) is refused; the next step() raises
    FailedPrecondition naming the session and the epoch, and the scheduler holds the session's
    values."""
    name = fresh_name()
    opt = Opt()
    with RemoteLRScheduler(opt, COSINE, name=name, server=server.address) as sched:
        sched.step()
        sched.step()
        sched.flush()
        one_cycle = {"type": "OneCycleLR", "max_lr": 1.0, "total_steps": 2}
        client.import_state(name, state=_stepped_state(client, one_cycle, 2), replace=True)
        sched.step()  # from the window: the Step is refused by the server
        with pytest.raises(lrsched.FailedPrecondition,
                           match=rf"pipelined step of session '{name}' from epoch 2 was refused"):
            sched.step()
        now = client.get_session(name)
        assert now.last_epoch == 2 and sched.last_epoch == 2
        assert lrs(opt) == now.lrs and sched.scheduler_type == "OneCycleLR"


def test_lost_compare_another_writer_stepped(client, server):
    """Another writer steps the session three times behind this scheduler's back: its Step from
    epoch 2 finds the session at 5, more than this job's steps can explain (another rank of the
    job may be one step ahead, at 4, no more). Raised by the next step(); the scheduler then
    stands where the session does."""
    name = fresh_name()
    opt = Opt()
    with RemoteLRScheduler(opt, COSINE, name=name, server=server.address) as sched:
        sched.step()
        sched.step()
        sched.flush()
        for _ in range(3):
            client.step(name)
        sched.step()
        with pytest.raises(lrsched.Aborted, match=r"found the session at epoch 5 .*another "
                           r"writer stepped it \(lost compare on if_epoch\)"):
            sched.step()
        ref = client.simulate(sched.spec, 7)
        assert sched.last_epoch == 5 and lrs(opt) == ref.lr[5]
        sched.step()  # and it goes on from there
        sched.flush()
        assert client.get_session(name).last_epoch == 6 and lrs(opt) == ref.lr[6]


def test_schedule_changed_by_another_writer(client, server):
    """Another writer replaces the schedule (StepLR) at the same epoch: the Step from that epoch
    still matches and advances, but the reply's revision shows a change that is not a plain
    step; the next step() raises Aborted and the scheduler holds the StepLR values."""
    name = fresh_name()
    opt = Opt()
    step_lr = {"type": "StepLR", "step_size": 1, "gamma": 0.5}
    with RemoteLRScheduler(opt, COSINE, name=name, server=server.address) as sched:
        sched.step()
        sched.step()
        sched.flush()
        client.import_state(name, state=_stepped_state(client, step_lr, 2), replace=True)
        sched.step()  # applies Cosine's epoch 3 from the window
        with pytest.raises(lrsched.Aborted, match="changed by another writer"):
            sched.step()
        now = client.get_session(name)
        assert now.scheduler_type == "StepLR" and now.last_epoch == 3
        assert sched.last_epoch == 3 and lrs(opt) == now.lrs == [0.1 * 0.5 ** 3]


def test_step_lost_to_a_killed_server_is_sent_again(tmp_path):
    """The server is killed (SIGKILL) while a Step is in flight and restarted: the next step()
    sends it again (if_epoch: never twice) and the job goes on; nothing doubled or lost."""
    srv = Server(tmp_path, free_port()).start()
    try:
        opt = Opt()
        with RemoteLRScheduler(opt, COSINE, name="kill/me", server=srv.address,
                               retry_timeout=15.0) as sched:
            ref = sched.client.simulate(sched.spec, 8)
            for _ in range(3):
                sched.step()
            sched.flush()
            sched.step()  # its Step in flight (or about to be) when the server dies
            srv.proc.kill()
            srv.proc.wait(10)
            srv.proc = None
            restarter = threading.Timer(1.0, srv.start)
            restarter.start()
            try:
                for _ in range(3):  # the first sends the lost Step again, until the server is up
                    sched.step()
            finally:
                restarter.join(30)
            sched.flush()
            assert sched.last_epoch == 7 and lrs(opt) == ref.lr[7]
            assert sched.client.get_session("kill/me").last_epoch == 7
    finally:
        srv.stop()


def test_outage_past_retry_timeout_raises_unavailable(tmp_path):
    """The server stays down: the next step() gives up after retry_timeout with Unavailable
    naming the undelivered step, and close() (which would wait for it) raises too."""
    srv = Server(tmp_path, free_port()).start()
    try:
        opt = Opt()
        sched = RemoteLRScheduler(opt, COSINE, name="down/me", server=srv.address,
                                  retry_timeout=1.0, timeout=2.0)
        sched.step()
        sched.flush()
        srv.stop()
        sched.step()
        t0 = time.monotonic()
        with pytest.raises(lrsched.Unavailable, match=r"pipelined step of session 'down/me' "
                           r"from epoch 1 .*could not be delivered"):
            sched.step()
        assert time.monotonic() - t0 < 5.0
        with pytest.raises(lrsched.Unavailable):
            sched.close()
    finally:
        srv.stop()


def test_non_deterministic_and_explicit_epochs_stay_synchronous(client, server):
    opt = Opt()
    plateau = {"type": "ReduceLROnPlateau", "patience": 0}
    with RemoteLRScheduler(opt, plateau, name=fresh_name(), server=server.address) as sched:
        assert sched._pipeline is None
        sched.step(1.0)
        assert sched.advanced and sched.session.last_epoch == 1
    with RemoteLRScheduler(Opt(), COSINE, name=fresh_name(), server=server.address) as sched:
        sched.step()
        sched.step(epoch=5)  # synchronous, after the pipelined step landed
        assert sched.advanced and sched.last_epoch == sched.session.last_epoch == 5
        sched.step()
        sched.flush()
        assert sched.session.last_epoch == 6
    with RemoteLRScheduler(Opt(), COSINE, name=fresh_name(), server=server.address,
                           pipeline=False) as sched:
        assert sched._pipeline is None


EXITS_WITHOUT_CLOSE = r"""
import sys
from lrsched.torch import RemoteLRScheduler

KEEP = []

class Opt:
    def __init__(self):
        self.param_groups = [{"lr": 0.1, "momentum": 0.9}]

def main(addr, name, keep):
    sched = RemoteLRScheduler(Opt(), {"type": "CosineAnnealingLR", "T_max": 10}, name=name,
                              server=addr, max_pending=64)
    for _ in range(20):
        sched.step()
    if keep == "global":
        KEEP.append(sched)
    print("DONE", flush=True)   # most Steps are still to be sent

main(*sys.argv[1:])
"""


@pytest.mark.parametrize("keep", ["global", "local"])
def test_exit_without_close_delivers_pending_steps(client, server, keep):
    """A trainer that returns (or exits) right after its last step() without close(), with
    steps still to send (max_pending=64 lets step() run ahead of the answers): they are
    delivered before the channel closes (collection or interpreter exit), within EXIT_WAIT, and
    the process exits promptly."""
    name = fresh_name("exit")
    env = lrsched_source.child_env()
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", EXITS_WITHOUT_CLOSE, server.address, name, keep],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout == "DONE\n", out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert time.monotonic() - t0 < 10.0
    assert client.get_session(name).last_epoch == 20


# -- a reply to a request sent before reset() ----------------------------------------------

class _HeldCall:
    """A blocking RPC in progress: returns `reply` when the test says (complete())."""

    def __init__(self):
        self.reply, self.done = None, threading.Event()

    def complete(self, reply):
        self.reply = reply
        self.done.set()


class _HeldClient:
    """What StepPipeline uses of a Client, with blocking RPCs the test answers itself."""
    timeout = 5.0
    _metadata = ()

    def __init__(self):
        self.sent = []  # (request, _HeldCall)
        self.cv = threading.Condition()
        outer = self

        class _Method:
            def __call__(self, req, timeout=None, metadata=None):
                call = _HeldCall()
                with outer.cv:
                    outer.sent.append((req, call))
                    outer.cv.notify_all()
                assert call.done.wait(timeout), "the test never answered"
                return call.reply

        class _Stub:
            GetLR = _Method()
            Step = _Method()

        self._stub = _Stub()

    def get_session(self, name):  # what an error re-reads: not needed here
        raise lrsched.Unavailable("a held client has no sessions")

    def wait_sent(self, n):
        with self.cv:
            assert self.cv.wait_for(lambda: len(self.sent) >= n, timeout=5), self.sent


def _pb_session(revision, epoch, lr):
    from lrsched._proto import pb
    from lrsched.values import Session
    return Session.from_proto(pb.Session(name="held", last_epoch=epoch, revision=revision,
                                         deterministic=True, groups=[pb.GroupValues(lr=lr)]))


def _pb_window(revision, epoch, lr):
    from lrsched._proto import pb
    return pb.GetLRResponse(name="held", last_epoch=epoch, revision=revision,
                            groups=[pb.GroupValues(lr=lr)],
                            window=[pb.EpochValues(epoch=epoch + i, groups=[pb.GroupValues(lr=lr)])
                                    for i in range(4)])


def test_window_requested_before_reset_is_ignored_after_it():
    """A lookahead sent before reset() (load_state_dict() rewound the session) and answered
    after it carries the old state: it must be ignored, not taken as "changed by another
    writer". (The sender thread's callbacks once read its loop variables late, so such a reply
    counted as the new generation's: a resumed Trainer failed with Aborted about half the
    time; tests/python/test_python_transformers.py's checkpoint test showed it. The sender
    now makes blocking calls, one at a time, and the generation check still applies.)"""
    from lrsched._step_pipeline import StepPipeline
    client = _HeldClient()
    p = StepPipeline(client, "held", _pb_session(34, 33, 0.5), window=4, max_pending=1)
    try:
        client.wait_sent(1)  # the first window, for the session at epoch 33
        p.reset(_pb_session(35, 30, 0.25))  # rewound by an import: epoch 30, revision 35
        client.sent[0][1].complete(_pb_window(34, 33, 0.5))  # the old state, answered late
        client.wait_sent(2)  # the new generation's window
        client.sent[1][1].complete(_pb_window(35, 30, 0.25))
        p.flush()  # raises the error the late reply would have recorded
        assert p.step() == (31, [lrsched.GroupValues(lr=0.25, momentum=None)])
    finally:
        p.close()
