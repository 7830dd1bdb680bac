"""lrsched-server as a real process, driven through the `lrsched` CLI.

(a) parity: `lrsched simulate LINE --server=ADDR` prints exactly what the local simulate prints,
    for every golden line;
(b) durability: clients step sessions with --if-epoch while the server is killed with SIGKILL;
    after a restart every acknowledged step is there, and the learning rates are the local
    simulate's at that epoch;
(c) SIGTERM/SIGINT: exit code 0, data flushed;
plus the CLI's session commands and mutual TLS.

Run by scripts/test.sh as `/usr/bin/python3 -m pytest tests/python` with LRSCHED_BIN_DIR set to the
build directory (holding server/lrsched-server and client/lrsched). Standard library, plus
python3-grpcio for the readiness check (ready.py).
"""
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time

import grpc
import pytest

from ready import READY_TIMEOUT, wait_until_healthy

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
pytestmark = pytest.mark.skipif(
    not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (the build directory; run scripts/test.sh)")

COSINE = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
          "scheduler": {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": 0.001}}
CALL_TIMEOUT = 30  # seconds, for any one process we run and wait for


def server_bin():
    return os.path.join(BIN_DIR, "server", "lrsched-server")


def cli_bin():
    return os.path.join(BIN_DIR, "client", "lrsched")


class Server:
    """One lrsched-server process on 127.0.0.1:<free port>; stderr is drained by a thread.
    `credentials` (grpc.ChannelCredentials): how to reach a TLS server's health check."""

    def __init__(self, data_dir, *flags, credentials=None):
        self.data_dir = str(data_dir)
        self.flags = list(flags)
        self.credentials = credentials
        self.proc = None
        self.addr = None
        self.lines = []
        self._listening = threading.Event()

    def start(self, timeout=READY_TIMEOUT):
        """Returns once the server answers a health check (within `timeout` in all)."""
        deadline = time.monotonic() + timeout
        self.lines = []
        self._listening.clear()
        self.addr = None
        self.proc = subprocess.Popen(
            [server_bin(), "--listen=127.0.0.1:0", f"--data_dir={self.data_dir}", *self.flags],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        try:
            # The log line tells the port chosen; the health check tells the server answers.
            if not self._listening.wait(max(0, deadline - time.monotonic())):
                raise AssertionError("server did not log event=listening:\n" + self.log())
            wait_until_healthy(self.addr, self.proc, deadline, self.credentials, self.log,
                               "lrsched-server")
        except BaseException:
            self.kill()
            raise
        return self

    def _drain(self, proc):
        for line in proc.stderr:
            self.lines.append(line)
            m = re.search(r"event=listening addr=(\S+)", line)
            if m:
                self.addr = m.group(1)
                self._listening.set()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Sends `sig` and returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(CALL_TIMEOUT)

    def close(self):
        """Teardown: a graceful stop if it still runs, SIGKILL if that does not work."""
        try:
            self.stop(timeout=10)
        except Exception:  # noqa: BLE001 - teardown must not fail over a stuck process
            pass
        self.kill()

    def log(self):
        return "".join(self.lines)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def server(data_dir):
    s = Server(data_dir)
    try:
        yield s.start()
    finally:
        s.close()


def lrsched(*args, server=None, timeout=CALL_TIMEOUT, **kw):
    argv = [cli_bin(), *args]
    if server is not None:
        argv.append(f"--server={server.addr}")
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def ok(*args, server=None):
    """lrsched(*args) that must exit 0: its stdout."""
    out = lrsched(*args, server=server)
    assert out.returncode == 0, (args, out.stderr)
    return out.stdout


def golden_lines(every=1):
    """Every golden line (or every `every`-th of each file, the first included)."""
    for name in ("torch-1.13-traces.jsonl", "lrsched-extra-traces.jsonl", "beyond-traces.jsonl"):
        for i, line in enumerate((DATA / name).read_text().splitlines()):
            if line.strip() and i % every == 0:
                yield pytest.param(line, id=f"{name}:{i + 1}:{json.loads(line)['name']}")


# Under the sanitizers (scripts/test.sh's second pass) remote simulate runs a sample of the
# lines: the server's Simulate is one code path for every type, and every line's engine run is
# already checked under ASan by golden_test; each line costs two CLI processes (~2 s there).
SANITIZED = os.environ.get("LRSCHED_SANITIZED") == "1"
SIMULATE_EVERY = 7 if SANITIZED else 1


# --- (a) parity -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("parity"))
    try:
        yield s.start()
    finally:
        s.close()


@pytest.mark.parametrize("line", list(golden_lines(SIMULATE_EVERY)))
def test_remote_simulate_matches_local(line, shared_server, tmp_path):
    path = tmp_path / "line.json"
    path.write_text(line)
    local = lrsched("simulate", str(path))
    remote = lrsched("simulate", str(path), server=shared_server)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout


def test_remote_simulate_leaves_no_sessions_and_keeps_local_exit_codes(shared_server, tmp_path):
    line = next(iter(golden_lines())).values[0]
    path = tmp_path / "line.json"
    path.write_text(line)
    assert lrsched("simulate", str(path), "--steps=3", server=shared_server).returncode == 0
    out = lrsched("list", "--json", server=shared_server)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sessions"] == []
    # Unreadable input: exit 2, as the local simulate, before any call.
    assert lrsched("simulate", str(tmp_path / "missing.json"), server=shared_server).returncode == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert lrsched("simulate", str(tmp_path / "bad.json"), server=shared_server).returncode == 2
    short = dict(json.loads(line), steps=5, metrics=[1.0])
    (tmp_path / "short.json").write_text(json.dumps(short))
    local = lrsched("simulate", str(tmp_path / "short.json"))
    remote = lrsched("simulate", str(tmp_path / "short.json"), server=shared_server)
    assert local.returncode == remote.returncode == 2
    assert local.stderr == remote.stderr


# --- the session commands ---------------------------------------------------------------------

def test_session_commands(server, tmp_path):
    golden = next(iter(golden_lines())).values[0]  # extra keys (name, steps, expected) are dropped
    spec = tmp_path / "spec.json"
    spec.write_text(golden)
    # Flags before or after the subcommand; --if-epoch with a dash.
    out = lrsched(f"--server={server.addr}", "create", "runs/a", f"--spec={spec}", "--json")
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["name"] == "runs/a" and created["last_epoch"] == 0
    assert created["spec"] == {k: json.loads(golden)[k] for k in ("optimizer", "scheduler")}
    out = lrsched("step", "runs/a", "--if-epoch=0", "--json", server=server)
    assert out.returncode == 0, out.stderr
    stepped = json.loads(out.stdout)
    assert stepped["advanced"] is True and stepped["last_epoch"] == 1
    out = lrsched("step", "--if-epoch=0", "runs/a", "--json", server=server)
    assert json.loads(out.stdout)["advanced"] is False
    out = lrsched("step", "runs/a", "--if-epoch", "1", "--json", server=server)  # separate value
    assert json.loads(out.stdout)["last_epoch"] == 2
    out = lrsched("get", "runs/a", "--json", server=server)
    got = json.loads(out.stdout)
    expected = json.loads(golden)["expected"]
    assert got["lr"] == expected["lr"][2] and got["momentum"] == expected["momentum"][2]
    table = lrsched("list", server=server).stdout.splitlines()  # a header, then one row each
    assert table[0].split()[0] == "NAME" and table[1].split()[0] == "runs/a"
    assert [s["name"] for s in json.loads(lrsched("list", "--json", server=server).stdout)
            ["sessions"]] == ["runs/a"]
    # Errors: message on stderr, exit 1 for refusals, 2 for usage, 4 for NOT_FOUND.
    bad = lrsched("step", "runs/a", "--metric=0.5", server=server)
    assert bad.returncode == 1 and "FAILED_PRECONDITION" in bad.stderr
    bad = lrsched("step", "runs/a", "--metric=nan", server=server)
    assert bad.returncode == 1 and "INVALID_ARGUMENT: metric:" in bad.stderr
    assert lrsched("get", "nope", server=server).returncode == 4
    assert lrsched("create", "x", server=server).returncode == 2  # no --spec
    assert lrsched("bogus", server=server).returncode == 2
    assert lrsched("delete", "runs/a", server=server).returncode == 0
    missing = lrsched("get", "runs/a", server=server)
    assert missing.returncode == 4 and "NOT_FOUND" in missing.stderr


# --- (b) durability across kill -9 ------------------------------------------------------------

def local_values(spec_path, epoch):
    """The local simulate's lr and momentum rows after `epoch` plain steps."""
    out = lrsched("simulate", str(spec_path), f"--steps={epoch + 1}")
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    return trace["lr"][epoch], trace["momentum"][epoch]


# FULL is the default; NORMAL (no fsync per batch) must survive a killed process just the same:
# the journal's records (or, without it, the WAL frames) are in the OS before the reply. With
# the journal (the default) a kill leaves the last --journal_apply_delay of steps to replay;
# "journal-only" keeps every step in the journal (all replayed); "no-journal" is the direct
# SQLite path (--journal=false), where the caller may write the batch itself.
# Under ASan (14 s each) the journal-only variants are left to the normal pass.
@pytest.mark.parametrize("journal", [
    [],
    pytest.param(["--journal_apply_delay=1h"], marks=pytest.mark.skipif(
        SANITIZED, reason="the normal pass runs it; 14 s under ASan")),
    ["--journal=false"]], ids=["journal", "journal-only", "no-journal"])
@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_acknowledged_steps_survive_kill_9(data_dir, tmp_path, synchronous, journal):
    sessions = [f"dur/{i}" for i in range(4)]
    workers_per_session = 2
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(dict(COSINE, steps=0)))
    server = Server(data_dir, f"--sqlite_synchronous={synchronous}", *journal)
    server.start()
    try:
        for name in sessions:
            out = lrsched("create", name, f"--spec={spec}", server=server)
            assert out.returncode == 0, out.stderr
        acked = {name: 0 for name in sessions}  # highest acknowledged last_epoch per session
        lock = threading.Lock()
        stop = threading.Event()
        deadline = time.monotonic() + 30

        def worker(name):
            epoch = 0
            for _ in range(2000):  # bounded in count and in time
                if stop.is_set() or time.monotonic() > deadline:
                    return
                out = lrsched("step", name, f"--if-epoch={epoch}", "--json", "--timeout=5s",
                              server=server, timeout=15)
                if out.returncode != 0:
                    return  # the server is gone: this step was not acknowledged
                reply = json.loads(out.stdout)
                epoch = reply["last_epoch"]
                if reply["advanced"]:
                    with lock:
                        acked[name] = max(acked[name], epoch)

        threads = [threading.Thread(target=worker, args=(name,))
                   for name in sessions for _ in range(workers_per_session)]
        for t in threads:
            t.start()
        # Let the load build up, then pull the plug mid-flight.
        while time.monotonic() < deadline - 20:
            with lock:
                if sum(acked.values()) >= 60:
                    break
            time.sleep(0.05)
        server.kill()  # SIGKILL
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert sum(acked.values()) > 0, "no step was acknowledged before the kill"

        server.start()
        for name in sessions:
            out = lrsched("get", name, "--json", server=server)
            assert out.returncode == 0, out.stderr
            got = json.loads(out.stdout)
            # Every acknowledged step is there; at most the one in flight at the kill more.
            assert acked[name] <= got["last_epoch"] <= acked[name] + 1, (name, acked[name], got)
            assert got["revision"] == got["last_epoch"] + 1
            lr, momentum = local_values(spec, got["last_epoch"])
            assert got["lr"] == lr and got["momentum"] == momentum
        assert server.stop() == 0
    finally:
        server.kill()


# --- (c) graceful shutdown --------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_and_flushes(data_dir, tmp_path, sig):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(COSINE))
    server = Server(data_dir)
    server.start()
    try:
        assert lrsched("create", "g", f"--spec={spec}", server=server).returncode == 0
        for k in range(10):
            out = lrsched("step", "g", f"--if-epoch={k}", server=server)
            assert out.returncode == 0, out.stderr
        assert server.stop(sig) == 0, server.log()
        assert "event=shutting_down" in server.log() and "event=stopped" in server.log()
        server.start()
        got = json.loads(lrsched("get", "g", "--json", server=server).stdout)
        assert got["last_epoch"] == 10
        assert got["lr"] == local_values(spec, 10)[0]
        assert server.stop() == 0
    finally:
        server.kill()


def test_listen_log_line_shows_the_bound_port(server):
    host, port = server.addr.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_port_in_use_fails_to_start(server, tmp_path):
    out = subprocess.run([server_bin(), f"--listen={server.addr}", f"--data_dir={tmp_path / 'd'}"],
                         capture_output=True, text=True, timeout=CALL_TIMEOUT)
    assert out.returncode == 1 and "event=start_failed" in out.stderr


def test_second_server_on_the_same_data_dir_is_refused(server, tmp_path):
    second = subprocess.run([server_bin(), "--listen=127.0.0.1:0",
                             f"--data_dir={server.data_dir}"],
                            capture_output=True, text=True, timeout=CALL_TIMEOUT)
    assert second.returncode == 1, second.stderr
    assert "event=store_open_failed code=FAILED_PRECONDITION" in second.stderr
    assert os.path.join(server.data_dir, "LOCK") in second.stderr
    assert f"pid {server.proc.pid}" in second.stderr, second.stderr
    # The refused start touched nothing: the first server goes on serving.
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(COSINE))
    assert lrsched("create", "s", f"--spec={spec}", server=server).returncode == 0
    assert lrsched("step", "s", server=server).returncode == 0
    assert server.stop() == 0
    again = Server(server.data_dir).start()
    try:
        got = lrsched("get", "s", "--json", server=again)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["last_epoch"] == 1
    finally:
        again.close()


def test_help_lists_the_servers_own_flags():
    out = subprocess.run([server_bin(), "--help"], capture_output=True, text=True,
                         timeout=CALL_TIMEOUT)
    text = out.stdout + out.stderr
    assert "lrsched-server [--listen=HOST:PORT]" in text
    for flag in ("--listen", "--data_dir", "--max_simulate_steps", "--tokens_file",
                 "--metrics_listen", "--store", "--etcd_endpoints"):
        assert flag in text, flag
    assert "No flags matched" not in text
    assert "--flagfile" not in text and "--fromenv" not in text


def test_bad_flags_fail_to_start(tmp_path):
    for flags in (["--sqlite_synchronous=sometimes"], ["--sqlite_checkpoint_pages=0"],
                  ["--tls_cert=/nonexistent"],
                  ["--tls_cert=/nonexistent", "--tls_key=/nonexistent"]):
        out = subprocess.run([server_bin(), "--listen=127.0.0.1:0",
                              f"--data_dir={tmp_path / 'd'}", *flags],
                             capture_output=True, text=True, timeout=CALL_TIMEOUT)
        assert out.returncode == 1, (flags, out.stderr)


# --- mutual TLS -------------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   timeout=CALL_TIMEOUT)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_mutual_tls(tmp_path):
    d = tmp_path
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout",
                f"{who}.key", "-out", f"{who}.csr", cwd=d)
        (d / f"{who}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{who}.ext", "-out", f"{who}.pem",
                cwd=d)
    spec = d / "spec.json"
    spec.write_text(json.dumps(COSINE))
    creds = grpc.ssl_channel_credentials(root_certificates=(d / "ca.pem").read_bytes(),
                                         private_key=(d / "client.key").read_bytes(),
                                         certificate_chain=(d / "client.pem").read_bytes())
    server = Server(d / "data", f"--tls_cert={d / 'server.pem'}", f"--tls_key={d / 'server.key'}",
                    f"--tls_client_ca={d / 'ca.pem'}", credentials=creds)
    server.start()
    try:
        tls = [f"--tls_ca={d / 'ca.pem'}", f"--tls_cert={d / 'client.pem'}",
               f"--tls_key={d / 'client.key'}"]
        out = lrsched("create", "m", f"--spec={spec}", *tls, server=server)
        assert out.returncode == 0, out.stderr
        # Without a client certificate, or without TLS at all: the handshake fails, which gRPC
        # reports as UNAVAILABLE (exit 3: the server cannot be reached this way).
        no_cert = lrsched("get", "m", f"--tls_ca={d / 'ca.pem'}", "--timeout=5s", server=server)
        assert no_cert.returncode == 3, no_cert.stderr
        plain = lrsched("get", "m", "--timeout=5s", server=server)
        assert plain.returncode == 3, plain.stderr
        assert server.stop() == 0
    finally:
        server.kill()
