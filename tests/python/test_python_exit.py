"""A trainer process that never calls close() exits promptly, whatever its client went through.

Found with build e1d5896: after a call the Python client had retried, a process that had not
closed its client hung forever at interpreter exit (grpc's channel __del__ waiting on a thread),
and a job whose server stayed down raised Unavailable on every rank and then never exited.

Each test runs a child process (Debian's /usr/bin/python3, the package from the source tree, as
a user's script would) that uses lrsched without close() and prints a marker when its main has
finished; the child must then exit within EXIT_LIMIT seconds:
- retried calls that succeed: the server is down when the child starts calling and is started
  while it retries;
- a server that stays down: the child's step() raises Unavailable after retry_timeout.

Needs LRSCHED_BIN_DIR (the build directory, holding server/lrsched-server); the build also
generates the package's gRPC modules. Each test takes a few seconds; every wait is bounded.
"""
import os
import pathlib
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
SERVER_BIN = os.path.join(BIN_DIR, "server", "lrsched-server") if BIN_DIR else None
PYTHON = "/usr/bin/python3"

if not BIN_DIR:
    pytest.skip("LRSCHED_BIN_DIR is not set (the CMake build directory; run scripts/test.sh)",
                allow_module_level=True)
if not os.access(SERVER_BIN, os.X_OK):
    pytest.skip(f"no server binary at {SERVER_BIN} (build the lrsched-server target)",
                allow_module_level=True)

EXIT_LIMIT = 2.0  # seconds from the child's last marker to its exit
HARD_LIMIT = 30.0  # seconds any wait here may take before the test fails (and kills)
START_TIMEOUT = 20  # seconds for a server to log event=listening


def free_port():
    """A port free on 127.0.0.1 now. (The server must come up on a port the child already
    dials, so it cannot pick its own with port 0.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One lrsched-server on 127.0.0.1:`port`, its log in `log_path`."""

    def __init__(self, tmp_path, port):
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "server.log"
        self.port = port
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [SERVER_BIN, f"--listen=127.0.0.1:{self.port}", f"--data_dir={self.data_dir}",
                 "--sqlite_synchronous=normal", "--shutdown_grace=1s"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if re.search(r"event=listening .*?addr=127\.0\.0\.1:%d\b" % self.port,
                         self.log_path.read_text(errors="replace")):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        log = self.log_path.read_text(errors="replace")
        self.stop()
        raise AssertionError(f"lrsched-server did not start listening:\n{log}")

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
                return
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(10)


class Child:
    """A /usr/bin/python3 process running `code` with the package importable; its stdout lines
    arrive in a queue with the time they were read."""

    def __init__(self, code, *args):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "client" / "python"), env.get("PYTHONPATH")) if p)
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
