"""Exact resume from a checkpoint older than the session, with real processes (issue #15, 2).

A two-rank job (each rank a resume_trainer.py process stepping the same session, as in
README "Distributed training" (a)) saves a checkpoint at epoch 10 and is killed (SIGKILL) at
epoch 16; the next launch restores model, optimizer and scheduler in torch's order, rank 1
loading only after rank 0 has already stepped on, and is killed again at 15, before its next
checkpoint; a third launch restores the same checkpoint and runs to the end. Every epoch's lr
and momentum, and the final weights, must be bit-exact to the same job under torch's own
OneCycleLR in this process (python3-torch is the oracle). The parent drives each rank line by
line (resume_trainer.py), so the kill points are exact; no sleeps.
"""
import json
import os
import subprocess
import sys

import pytest

import pyclient_server
from pyclient_server import Server, free_port

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(pyclient_server.skip_reason() is not None,
                                reason=pyclient_server.skip_reason() or "")

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINER = os.path.join(HERE, "resume_trainer.py")
EPOCHS = 24
CFG = {"seed": 7, "lr": 0.1, "ckpt_every": 10,
       "scheduler": {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": EPOCHS}}
NAME = "jobs/resume"
REPLY_TIMEOUT = 60  # seconds for one reply of a trainer (torch's import on a loaded machine)

sys.path.insert(0, HERE)
import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
from lrsched_source import PYTHON  # noqa: E402
import resume_trainer  # noqa: E402  (the same model, data and loop for the oracle)
import lrsched  # noqa: E402


def oracle():
    """lr and momentum per epoch (float.hex) and the final weights under torch's OneCycleLR."""
    torch.set_num_threads(1)
    model, opt = resume_trainer.model_and_optimizer(CFG)
    kw = {k: v for k, v in CFG["scheduler"].items() if k != "type"}
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, **kw)
    rows = []
    for epoch in range(EPOCHS):
        g = opt.param_groups[0]
        rows.append((g["lr"].hex(), g["momentum"].hex()))
        resume_trainer.train_one_epoch(model, opt, epoch)
        sched.step()
    return rows, resume_trainer.params_hex(model)


class Rank:
    """One trainer process; ask() sends a command and returns its JSON reply."""

    def __init__(self, server, name, ckpt_dir, rank, launch, log):
        env = lrsched_source.child_env(LRSCHED_LAUNCH_ID=launch,
                   )
        self.proc = subprocess.Popen(
            [PYTHON, TRAINER, server.address, name, str(ckpt_dir), str(rank), json.dumps(CFG)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        self.rank = rank

    def read(self):
        # A trainer that dies closes stdout: readline returns "" and the test fails, not hangs;
        # a wedged one is killed by communicate()'s bound in kill().
        line = self.proc.stdout.readline()
        assert line, f"rank {self.rank} exited (code {self.proc.poll()}); see trainer.log"
        return json.loads(line)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def kill(self):
        """kill -9: no exit handler, no close()."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=REPLY_TIMEOUT)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path, free_port()).start()
    yield s
    s.stop()


def test_killed_job_resumes_bit_exactly_twice_from_one_checkpoint(server, tmp_path):
    want_rows, want_params = oracle()
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    ckpt = str(ckpt_dir / "ckpt-10.pt")
    ranks = []
    with open(tmp_path / "trainer.log", "w") as log, \
            lrsched.Client(server.address, retry_timeout=5.0) as client:
        def launch(launch_id):
            rs = [Rank(server, NAME, ckpt_dir, r, launch_id, log) for r in (0, 1)]
            ranks.extend(rs)
            for r in rs:
                assert r.read()["ready"]
            return rs

        def lockstep(rs, first, last, seen):
            for epoch in range(first, last):
                for r in rs:
                    got = r.ask("step")
                    assert got["epoch"] == epoch
                    seen.append((r.rank, epoch, got["lr"], got["momentum"]))

        def check(seen):
            for rank, epoch, lr, momentum in seen:
                assert (lr, momentum) == want_rows[epoch], f"rank {rank}, epoch {epoch}"

        def restart(launch_id, stop_at):
            """Restores the epoch-10 checkpoint in torch's order; rank 1 loads only after rank 0
            has stepped on (as a DDP rank one iteration behind)."""
            r0, r1 = rs = launch(launch_id)
            assert r0.ask(f"load {ckpt}") == {"loaded": 10, "last_epoch": 10}
            seen = []
            got = r0.ask("step")
            assert got["last_epoch"] == 11
            seen.append((0, 10, got["lr"], got["momentum"]))
            assert r1.ask(f"load {ckpt}") == {"loaded": 10, "last_epoch": 10}
            # One change per launch, recorded: rank 1's load did not rewind the session again.
            session = client.get_session(NAME)
            assert session.last_epoch == 11
            assert session.labels["lrsched.resume/launch"] == launch_id
            got = r1.ask("step")
            assert got["last_epoch"] == 11  # rank 0 stepped the session; rank 1 adopted it
            seen.append((1, 10, got["lr"], got["momentum"]))
            lockstep(rs, 11, stop_at, seen)
            check(seen)
            return rs

        try:
            rs = launch("launch-1")
            seen = []
            lockstep(rs, 0, 16, seen)
            check(seen)
            assert os.path.exists(ckpt)
            for r in rs:
                r.kill()  # at epoch 16, six epochs after the checkpoint

            for r in restart("launch-2", 15):
                r.kill()  # the second crash: at 15, before the next checkpoint

            rs = restart("launch-3", EPOCHS)  # the same checkpoint again: rewinds again
            for r in rs:
                assert r.ask("params")["params"] == want_params
                assert r.ask("exit") == {"bye": True}
                assert r.proc.wait(REPLY_TIMEOUT) == 0
        finally:
            for r in ranks:
                r.kill()
    assert "Warning" not in (tmp_path / "trainer.log").read_text()


# A rank that prints the launch id launch_id() resolves (torch.distributed, gloo on loopback).
_LAUNCH_RANK = """
import os, sys
import torch.distributed as dist
from lrsched import _resume
dist.init_process_group("gloo", init_method=sys.argv[1], rank=int(sys.argv[2]), world_size=2)
first = _resume.launch_id()
assert _resume.launch_id() == first  # resolved once per process
print(first, flush=True)
dist.destroy_process_group()
"""


def test_ranks_agree_on_a_launch_id_rank_0_broadcasts():
    def launch():
        url = f"tcp://127.0.0.1:{free_port()}"
        env = lrsched_source.child_env(WORLD_SIZE="2",
                   )
        env.pop("LRSCHED_LAUNCH_ID", None)
        procs = [subprocess.Popen([PYTHON, "-c", _LAUNCH_RANK, url, str(r)], env=env,
                                  stdout=subprocess.PIPE, text=True) for r in (0, 1)]
        try:
            outs = [p.communicate(timeout=REPLY_TIMEOUT)[0].strip() for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        assert [p.returncode for p in procs] == [0, 0]
        return outs

    ids = launch()
    assert len(ids[0]) == 32 and ids[0] == ids[1]  # one launch: rank 0's random id everywhere


def test_a_rank_without_process_group_or_launch_id_is_refused():
    env = lrsched_source.child_env(WORLD_SIZE="2",
               )
    env.pop("LRSCHED_LAUNCH_ID", None)
    code = "from lrsched import _resume\ntry:\n  _resume.launch_id()\nexcept RuntimeError as e:" \
           "\n  print(e)\n"
    out = subprocess.run([PYTHON, "-c", code], env=env, stdout=subprocess.PIPE, text=True,
                         timeout=REPLY_TIMEOUT).stdout
    assert "launch_id=" in out and "init_process_group" in out
