"""An lrsched-server process on 127.0.0.1 for the Python client's process tests
(test_python_exit.py, test_python_follow.py): started on a port chosen beforehand, so that a
client can dial it while it is still down, and stopped (SIGTERM, then SIGKILL) by stop().

SERVER_BIN is $LRSCHED_BIN_DIR/server/lrsched-server (None when LRSCHED_BIN_DIR is unset); the
tests skip themselves when it is missing. Not a test module (pytest collects test_*.py only).
"""
import os
import re
import signal
import socket
import subprocess
import time

from ready import wait_until_healthy

BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
SERVER_BIN = os.path.join(BIN_DIR, "server", "lrsched-server") if BIN_DIR else None
START_TIMEOUT = 20  # seconds for a server to log event=listening
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL


def skip_reason():
    """Why these tests cannot run here, or None."""
    if not BIN_DIR:
        return "LRSCHED_BIN_DIR is not set (the CMake build directory; run scripts/test.sh)"
    if not os.access(SERVER_BIN, os.X_OK):
        return f"no server binary at {SERVER_BIN} (build the lrsched-server target)"
    return None


def free_port():
    """A port free on 127.0.0.1 now. (The server must come up on a port a client already
    dials, so it cannot pick its own with port 0.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One lrsched-server on 127.0.0.1:`port` with its data in `tmp_path`/data and its log in
    `tmp_path`/server.log (appended to across restarts)."""

    def __init__(self, tmp_path, port):
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "server.log"
        self.port = port
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        """Starts it and returns self once it listens on the port and answers a health check."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [SERVER_BIN, f"--listen=127.0.0.1:{self.port}", f"--data_dir={self.data_dir}",
                 "--sqlite_synchronous=normal", "--shutdown_grace=1s"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if re.search(r"event=listening .*?addr=127\.0\.0\.1:%d\b" % self.port,
                         self.log_path.read_text(errors="replace")):
                # Listening is not yet answering on a loaded machine (ready.py).
                wait_until_healthy(self.address, proc=self.proc,
                                   log=lambda: self.log_path.read_text(errors="replace"))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        log = self.log_path.read_text(errors="replace")
        self.stop()
        raise AssertionError(f"lrsched-server did not start listening:\n{log}")

    def stop(self):
        """Stops it if it runs (idempotent)."""
        proc, self.proc = self.proc, None
        stop_process(proc)


def stop_process(proc):
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; waits for the process (None: nothing to do)."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(STOP_TIMEOUT)
