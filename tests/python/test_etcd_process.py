"""lrsched-server with --store=etcd as real processes, on a real etcd started here.

(a) parity: `lrsched simulate LINE --server=ADDR` equals the local simulate for every golden
    line, served by a replica on etcd;
(b) two replicas: a session created on A, stepped alternately through A and B with --if-epoch,
    read on either: the same state, and the local simulate's values at that epoch;
(c) a replica killed with SIGKILL mid-load: every acknowledged step is in etcd, and a replica
    started afterwards serves it.

etcd runs on 127.0.0.1 ports chosen free at run time and is stopped by the fixture; skipped when
no etcd binary is installed (apt-get install etcd-server). Every process is waited for with a
gRPC health check (ready.py), not a log line: replicas under load answer late.
"""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from ready import wait_until_healthy
from test_server_process import (COSINE, Server, golden_lines, lrsched, local_values)

BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
ETCD = os.environ.get("ETCD_BIN") or shutil.which("etcd") or (
    "/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None)
pytestmark = [
    pytest.mark.skipif(not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (run scripts/test.sh)"),
    pytest.mark.skipif(not ETCD, reason="etcd binary not found (apt-get install etcd-server)"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    d = tmp_path_factory.mktemp("etcd")
    client, peer = free_port(), free_port()
    c, p = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    log = open(d / "etcd.log", "w")
    proc = subprocess.Popen(
        [ETCD, "--name", "t", "--data-dir", str(d / "data"), "--listen-client-urls", c,
         "--advertise-client-urls", c, "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
         "--initial-cluster", f"t={p}", "--log-level", "warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until_healthy(f"127.0.0.1:{client}", proc, log=(d / "etcd.log").read_text,
                           what="etcd")
        yield f"127.0.0.1:{client}"
    finally:
        proc.kill()
        proc.wait(30)
        log.close()


def replica(tmp_path, endpoints, prefix):
    return Server(tmp_path / "unused", "--store=etcd", f"--etcd_endpoints={endpoints}",
                  f"--etcd_prefix={prefix}")


@pytest.fixture(scope="module")
def etcd_server(etcd, tmp_path_factory):
    s = replica(tmp_path_factory.mktemp("parity"), etcd, "/parity/")
    try:
        yield s.start()
    finally:
        s.close()


# A sample of the golden lines: Simulate creates no session, so the store plays no part in it
# beyond the server's start; test_server_process.py runs every line (two CLI processes each).
@pytest.mark.parametrize("line", list(golden_lines(every=10)))
def test_remote_simulate_matches_local_on_etcd(line, etcd_server, tmp_path):
    path = tmp_path / "line.json"
    path.write_text(line)
    local = lrsched("simulate", str(path))
    remote = lrsched("simulate", str(path), server=etcd_server)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout


def test_two_replicas_serve_the_same_session(etcd, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(COSINE))
    a = replica(tmp_path, etcd, "/two/").start()
    b = replica(tmp_path, etcd, "/two/").start()
    try:
        assert lrsched("create", "s", f"--spec={spec}", server=a).returncode == 0
        for k in range(6):
            out = lrsched("step", "s", f"--if-epoch={k}", "--json", server=(a, b)[k % 2])
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["advanced"]
        # A retried step (same if_epoch) on the other replica does not step twice.
        out = lrsched("step", "s", "--if-epoch=5", "--json", server=a)
        assert out.returncode == 0 and not json.loads(out.stdout)["advanced"]
        # --consistent reads etcd itself: equal at once, whatever the feed's delay.
        got = [json.loads(lrsched("get", "s", "--json", "--consistent", server=s).stdout)
               for s in (a, b)]
        assert got[0] == got[1]
        lr_now = json.loads(lrsched("lr", "s", "--json", "--consistent", server=a).stdout)
        assert lr_now["last_epoch"] == 6
        listed = json.loads(lrsched("list", "--json", "--consistent", server=b).stdout)
        assert [x["name"] for x in listed["sessions"]] == ["s"]
        assert got[0]["last_epoch"] == 6
        lr, momentum = local_values(spec, 6)
        assert got[0]["lr"] == lr and got[0]["momentum"] == momentum
    finally:
        a.close()
        b.close()


def test_replica_killed_loses_no_acknowledged_step(etcd, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(COSINE))
    a = replica(tmp_path, etcd, "/kill/").start()
    b = replica(tmp_path, etcd, "/kill/").start()
    c = None
    try:
        assert lrsched("create", "k", f"--spec={spec}", server=a).returncode == 0
        acked = [0]
        lock = threading.Lock()
        deadline = time.monotonic() + 20

        def worker(srv):
            epoch = 0
            for _ in range(500):  # bounded in count and in time
                if time.monotonic() > deadline:
                    return
                out = lrsched("step", "k", f"--if-epoch={epoch}", "--json", "--timeout=5s",
                              server=srv, timeout=15)
                if out.returncode != 0:
                    if srv is a:
                        return  # A is gone: not acknowledged
                    continue
                reply = json.loads(out.stdout)
                epoch = reply["last_epoch"]
                if reply["advanced"]:
                    with lock:
                        acked[0] = max(acked[0], epoch)

        threads = [threading.Thread(target=worker, args=(s,)) for s in (a, a, b, b)]
        for t in threads:
            t.start()
        while time.monotonic() < deadline - 15:
            with lock:
                if acked[0] >= 20:
                    break
            time.sleep(0.05)
        a.kill()  # SIGKILL one replica mid-load; B keeps serving
        for t in threads:
            t.join(timeout=40)
        assert not any(t.is_alive() for t in threads)
        assert acked[0] > 0
        c = replica(tmp_path, etcd, "/kill/").start()  # a new replica catches up from etcd
        got = [json.loads(lrsched("get", "k", "--json", server=s).stdout) for s in (b, c)]
        assert got[0] == got[1]
        assert got[0]["last_epoch"] >= acked[0]
        lr, momentum = local_values(spec, got[0]["last_epoch"])
        assert got[0]["lr"] == lr and got[0]["momentum"] == momentum
    finally:
        a.kill()
        b.close()
        if c is not None:
            c.close()
