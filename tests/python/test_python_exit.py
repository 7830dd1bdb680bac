"""A trainer process that never calls close() exits promptly, whatever its client went through.

Found with build e1d5896: after a call the Python client had retried, a process that had not
closed its client hung forever at interpreter exit (grpc's channel __del__ waiting on a thread),
and a job whose server stayed down raised Unavailable on every rank and then never exited.

Each test runs a child process (the tests' interpreter and lrsched, lrsched_source.py, as a
user's script would) that uses lrsched without close() and prints a marker when its main has
finished; the child must then exit within EXIT_LIMIT seconds:
- retried calls that succeed: the server is down when the child starts calling and is started
  while it retries;
- a server that stays down: the child's step() raises Unavailable after retry_timeout.
In-process, the pieces that bound a call's life: retry_timeout (and retries) end the retries
with an Unavailable naming the time waited; RemoteLRScheduler passes retry_timeout on and
closes its client as a context manager.

Needs LRSCHED_BIN_DIR (the build directory, holding server/lrsched-server); the build also
generates the package's gRPC modules. Each test takes a few seconds; every wait is bounded.
"""
import queue
import re
import subprocess
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

PYTHON = lrsched_source.PYTHON
EXIT_LIMIT = 2.0  # seconds from the child's last marker to its exit
HARD_LIMIT = 30.0  # seconds any wait here may take before the test fails (and kills)


class Child:
    """A process of the tests' interpreter running `code` with the same lrsched importable; its
    stdout lines arrive in a queue with the time they were read."""

    def __init__(self, code, *args):
        env = lrsched_source.child_env()
        self.proc = subprocess.Popen([PYTHON, "-c", code, *args], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put, True),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append, False),
                         daemon=True).start()

    @staticmethod
    def _read(stream, put, mark_end):
        for line in stream:
            put((time.monotonic(), line.rstrip("\n")))
        if mark_end:
            put((time.monotonic(), None))  # end of the stream: the child has exited

    def expect(self, prefix):
        """Waits for the next stdout line; it must start with `prefix`. Returns (time, line)."""
        try:
            at, line = self.lines.get(timeout=HARD_LIMIT)
        except queue.Empty:
            raise AssertionError(f"the child printed nothing in {HARD_LIMIT} s waiting for "
                                 f"{prefix!r}; stderr:\n{self.err()}") from None
        if line is None:
            self.proc.wait(HARD_LIMIT)
            time.sleep(0.1)  # let the reader thread take the rest of stderr
            raise AssertionError(f"the child exited ({self.proc.returncode}) before printing "
                                 f"{prefix!r}; stderr:\n{self.err()}")
        assert line.startswith(prefix), f"{line!r} (wanted {prefix!r}); stderr:\n{self.err()}"
        return at, line

    def tell(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def exit_delay(self, since):
        """Seconds from `since` until the child exited (it must exit with status 0)."""
        try:
            rc = self.proc.wait(HARD_LIMIT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the child did not exit within {HARD_LIMIT} s of finishing "
                                 f"its main (hung at interpreter exit)") from None
        delay = time.monotonic() - since
        time.sleep(0.1)  # let the reader thread take the rest of stderr
        assert rc == 0, f"child exit status {rc}; stderr:\n{self.err()}"
        # Closing a channel under gRPC's connectivity thread would print its traceback.
        assert "Traceback" not in self.err(), self.err()
        return delay

    def err(self):
        return "\n".join(line for _, line in self.stderr)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


# The child: a training loop's use of the client, never calling close(). `keep` decides whether
# its objects are still referenced when the interpreter exits (global) or were dropped when
# main returned (local: garbage collection closes them).
RETRIED_THEN_UP = r"""
import sys, time
import lrsched
from lrsched.torch import RemoteLRScheduler

KEEP = []

class Opt:
    def __init__(self):
        self.param_groups = [{"lr": 0.1, "momentum": 0.9}]

def main(addr, keep):
    client = lrsched.Client(addr, timeout=5.0, retry_timeout=25.0, backoff=0.05, max_backoff=0.5)
    print("CALLING", flush=True)   # the server is down now; the parent starts it later
    t0 = time.monotonic()
    session = client.create_session("exit/retried", {
        "optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
        "scheduler": {"type": "StepLR", "step_size": 2}})
    retried_for = time.monotonic() - t0
    client.step("exit/retried", if_epoch=session.last_epoch)
    sched = RemoteLRScheduler(Opt(), {"type": "CosineAnnealingLR", "T_max": 10},
                              name="exit/sched", server=addr, retry_timeout=25.0)
    sched.step()
    if keep == "global":
        KEEP.extend([client, sched])
    print(f"FINISHED retried_for={retried_for:.2f} last_epoch={sched.last_epoch}", flush=True)

main(sys.argv[1], sys.argv[2])
"""

STAYS_DOWN = r"""
import sys, time
import lrsched
from lrsched.torch import RemoteLRScheduler

KEEP = []

class Opt:
    def __init__(self):
        self.param_groups = [{"lr": 0.1, "momentum": 0.9}]

def main(addr, keep):
    sched = RemoteLRScheduler(Opt(), {"type": "CosineAnnealingLR", "T_max": 10},
                              name="exit/down", server=addr, retry_timeout=2.0)
    if keep == "global":
        KEEP.append(sched)
    sched.step()
    print("STEPPED", flush=True)
    sys.stdin.readline()             # the parent has stopped the server
    t0 = time.monotonic()
    try:
        # Pipelined: the first step() takes its value from the window and sends its Step; the
        # next one finds that Step lost and retries it until retry_timeout.
        sched.step()
        sched.step()
    except lrsched.Unavailable as e:
        print(f"RAISED after={time.monotonic() - t0:.2f} message={e}", flush=True)
    else:
        print("STEPPED AGAIN (the server was down?)", flush=True)

main(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("keep", ["global", "local"])
def test_exit_after_retried_calls_without_close(tmp_path, keep):
    server = Server(tmp_path, free_port())
    child = Child(RETRIED_THEN_UP, f"127.0.0.1:{server.port}", keep)
    try:
        child.expect("CALLING")
        time.sleep(1.0)  # the child retries against nothing for a while
        server.start()
        finished_at, line = child.expect("FINISHED")
        retried_for = float(re.search(r"retried_for=([\d.]+)", line).group(1))
        assert retried_for >= 0.5, f"the create was not retried: {line}"
        assert "last_epoch=1" in line, line
        delay = child.exit_delay(finished_at)
        assert delay < EXIT_LIMIT, f"exited {delay:.2f} s after finishing ({keep})"
    finally:
        child.kill()
        server.stop()


@pytest.mark.parametrize("keep", ["global", "local"])
def test_exit_after_the_server_stays_down_without_close(tmp_path, keep):
    server = Server(tmp_path, free_port()).start()
    child = Child(STAYS_DOWN, f"127.0.0.1:{server.port}", keep)
    try:
        child.expect("STEPPED")
        server.stop()
        child.tell("go")
        raised_at, line = child.expect("RAISED")
        after = float(re.search(r"after=([\d.]+)", line).group(1))
        # retry_timeout=2: no sooner, and not much later (each retry is cut to what is left).
        assert 1.9 <= after <= 4.0, line
        assert "UNAVAILABLE" in line and "retry_timeout=2 s" in line, line
        assert re.search(r"after \d+ attempts in 2\.\d s", line), line
        delay = child.exit_delay(raised_at)
        assert delay < EXIT_LIMIT, f"exited {delay:.2f} s after raising ({keep})"
    finally:
        child.kill()
        server.stop()


def test_retry_timeout_bounds_the_retries():
    """Retry-safe calls to a server that stays down retry for retry_timeout seconds in all, then
    raise Unavailable naming the time waited (README "Retries"); a plain step is sent once."""
    assert lrsched.Client("127.0.0.1:1").retry_timeout == lrsched.client.DEFAULT_RETRY_TIMEOUT
    for bad in (-1, float("nan"), float("inf"), None, "2"):
        with pytest.raises(ValueError, match="retry_timeout"):
            lrsched.Client("127.0.0.1:1", retry_timeout=bad)
    with lrsched.Client("127.0.0.1:1", timeout=5.0, retry_timeout=1.5, backoff=0.05) as down:
        t0 = time.monotonic()
        with pytest.raises(lrsched.Unavailable) as e:
            down.get_lr("x", window=4)
        waited = time.monotonic() - t0
        assert 1.5 <= waited < 3.5, waited
        assert re.search(r"gave up on GetLR after \d+ attempts in 1\.\d s; retry_timeout=1\.5 s",
                         str(e.value)), str(e.value)
        t0 = time.monotonic()
        with pytest.raises(lrsched.Unavailable) as e:
            down.step("x")  # not retry-safe: one attempt, the plain gRPC message
        assert time.monotonic() - t0 < 1.0 and "gave up" not in str(e.value)
    with lrsched.Client("127.0.0.1:1", retry_timeout=0) as once:
        t0 = time.monotonic()
        with pytest.raises(lrsched.Unavailable, match=r"after 1 attempt in 0\.\d s"):
            once.get_session("x")
        assert time.monotonic() - t0 < 1.0
    # A count bound, when given, ends the retries first.
    with lrsched.Client("127.0.0.1:1", retry_timeout=30, retries=2, backoff=0.05) as few:
        with pytest.raises(lrsched.Unavailable, match="after 3 attempts"):
            few.get_session("x")


class Opt:
    """Not torch: just `param_groups`."""

    def __init__(self):
        self.param_groups = [{"lr": 0.1, "momentum": 0.9}]


COSINE = {"type": "CosineAnnealingLR", "T_max": 10}


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path, free_port()).start()
    try:
        yield s
    finally:
        s.stop()


def test_remote_scheduler_passes_retry_timeout_and_closes_as_a_context_manager(server):
    name = "ctx/1"
    with RemoteLRScheduler(Opt(), COSINE, name=name, server=server.address,
                           retry_timeout=3.5) as sched:
        assert sched.client.retry_timeout == 3.5
        sched.step()
        assert sched.last_epoch == 1
    assert sched.client._channel is None  # closed by __exit__
    with lrsched.Client(server.address) as c:
        assert c.get_session(name).last_epoch == 1
    with pytest.raises(lrsched.Unavailable, match="retry_timeout=0.5 s"):
        RemoteLRScheduler(Opt(), COSINE, name="ctx/2", server="127.0.0.1:1",
                          retry_timeout=0.5)
