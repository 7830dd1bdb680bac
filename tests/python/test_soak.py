"""Soak: a real lrsched-server under 32 concurrent clients for SOAK_SECONDS (default 60).

Each client (its own `lrsched.Client`, so its own connection, all with an admin bearer token)
loops over a mix of calls: steps of its own long-lived sessions with `if_epoch` (most of the
load), GetLR windows, GetSession, ListSessions, Simulate, ExportState, and short-lived sessions
created, stepped and deleted. At the end:

- no call failed (client side), and the server's /metrics counts no call that was not OK;
- nothing was lost: every long-lived session is at exactly the epoch its client acknowledged,
  both on the running server and after a SIGTERM and a restart;
- no short-lived session is left over;
- the server's resident memory (VmRSS) after the warm-up and at the end is printed, and may not
  have grown by more than max(32 MiB, 50 %): a leak of even a few hundred bytes per call would.

Part of the default run (scripts/test.sh runs all of tests/python); SOAK_SECONDS=5 for a
quick local check.
"""
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from ready import READY_TIMEOUT, wait_until_healthy

BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
SERVER_BIN = os.path.join(BIN_DIR, "server", "lrsched-server") if BIN_DIR else None
if not BIN_DIR:
    pytest.skip("LRSCHED_BIN_DIR is not set (the CMake build directory; run scripts/test.sh)",
                allow_module_level=True)
if not os.access(SERVER_BIN, os.X_OK):
    pytest.skip(f"no server binary at {SERVER_BIN}", allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CLIENTS = 32
KEEP_PER_CLIENT = 2
TOKEN = "soak-admin-token-0123456789abcdef"
SPECS = [
    {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.2}]},
     "scheduler": {"type": "CosineAnnealingLR", "T_max": 1000, "eta_min": 0.001}},
    {"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.01}]},
     "scheduler": {"type": "StepLR", "step_size": 7, "gamma": 0.9}},
    {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
     "scheduler": {"type": "LambdaLR", "lr_lambda": "0.999 ** epoch"}},
]


class Server:
    """lrsched-server on 127.0.0.1:<free port> with metrics and a tokens file; log to a file."""

    def __init__(self, tmp):
        self.tmp = pathlib.Path(tmp)
        self.tokens = self.tmp / "tokens"
        self.tokens.write_text(f"# soak\n{TOKEN} admin\n")
        self.proc = None
        self.addr = None
        self.metrics_port = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log_path = self.tmp / f"server-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [SERVER_BIN, "--listen=127.0.0.1:0", f"--data_dir={self.tmp / 'data'}",
                 "--sqlite_synchronous=normal", "--metrics_listen=127.0.0.1:0",
                 f"--tokens_file={self.tokens}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            # The log lines tell the ports chosen; the health check tells the server answers.
            while True:
                text = self.log()
                m = re.search(r"event=listening addr=(\S+)", text)
                p = re.search(r"event=metrics_listening port=(\d+)", text)
                if m and p:
                    break
                assert self.proc.poll() is None and time.monotonic() < deadline, \
                    "lrsched-server did not start:\n" + text
                time.sleep(0.02)
            self.addr, self.metrics_port = m.group(1), int(p.group(1))
            wait_until_healthy(self.addr, self.proc, deadline, log=self.log,
                               what="lrsched-server")
        except BaseException:
            self.kill()
            raise
        return self

    def log(self):
        return self.log_path.read_text(errors="replace")

    def rss_kib(self):
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def metrics(self):
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def worker(idx, addr, deadline, acked, counts, errors, lock):
    rng = random.Random(idx)
    client = lrsched.Client(addr, token=TOKEN, timeout=20)
    keep = [f"soak/c{idx}/keep{k}" for k in range(KEEP_PER_CLIENT)]
    epochs = {}
    ops = {}
    try:
        for k, name in enumerate(keep):
            epochs[name] = client.create_session(name, SPECS[(idx + k) % len(SPECS)]).last_epoch
        ephemeral = 0
        while time.monotonic() < deadline:
            r = rng.random()
            name = rng.choice(keep)
            if r < 0.60:
                op = "step"
                res = client.step(name, if_epoch=epochs[name])
                if not res.advanced:
                    raise AssertionError(f"{name}: step from {epochs[name]} did not advance")
                epochs[name] = res.session.last_epoch
            elif r < 0.70:
                op = "get_lr"
                client.get_lr(name, window=8)
            elif r < 0.80:
                op = "get_session"
                got = client.get_session(name)
                if got.last_epoch != epochs[name]:
                    raise AssertionError(f"{name}: at {got.last_epoch}, acked {epochs[name]}")
            elif r < 0.85:
                op = "list"
                client.list_sessions(name_prefix=f"soak/c{idx}/")
            elif r < 0.90:
                op = "simulate"
                client.simulate(SPECS[rng.randrange(len(SPECS))], 20)
            elif r < 0.95:
                op = "export"
                client.export_state(name)
            else:
                op = "create_delete"
                ephemeral += 1
                tmp = f"soak/c{idx}/tmp{ephemeral}"
                client.create_session(tmp, SPECS[ephemeral % len(SPECS)])
                client.step(tmp, if_epoch=0)
                client.delete_session(tmp)
            ops[op] = ops.get(op, 0) + 1
    except Exception as e:  # noqa: BLE001 - every failure is reported at the end
        with lock:
            errors.append(f"client {idx}: {type(e).__name__}: {e}")
    finally:
        client.close()
        with lock:
            acked.update(epochs)
            for op, n in ops.items():
                counts[op] = counts.get(op, 0) + n


def not_ok_calls(metrics_text):
    bad = {}
    for m in re.finditer(r'^lrsched_rpc_total\{method="([^"]+)",code="(\w+)"\} (\d+)$',
                         metrics_text, re.M):
        if m.group(2) != "OK":
            bad[f"{m.group(1)} {m.group(2)}"] = int(m.group(3))
    return bad


def test_soak(tmp_path, capsys):
    server = Server(tmp_path).start()
    try:
        acked, counts, errors, lock = {}, {}, [], threading.Lock()
        t0 = time.monotonic()
        deadline = t0 + SOAK_SECONDS
        threads = [threading.Thread(target=worker,
                                    args=(i, server.addr, deadline, acked, counts, errors, lock))
                   for i in range(CLIENTS)]
        rss_start = server.rss_kib()
        for t in threads:
            t.start()
        # Memory after the warm-up (thread pools and caches at their working size).
        time.sleep(min(max(SOAK_SECONDS * 0.15, 2), SOAK_SECONDS))
        rss_warm = server.rss_kib()
        for t in threads:
            t.join(SOAK_SECONDS + 120)
        elapsed = time.monotonic() - t0
        assert not any(t.is_alive() for t in threads), "a client is stuck"
        rss_end = server.rss_kib()
        total = sum(counts.values())
        with capsys.disabled():
            print(f"\nsoak: {SOAK_SECONDS:.0f}s, {CLIENTS} clients, {total} calls "
                  f"({total / elapsed:.0f}/s) {json.dumps(counts, sort_keys=True)}; "
                  f"server VmRSS start {rss_start} KiB, after warm-up {rss_warm} KiB, "
                  f"end {rss_end} KiB", flush=True)
        assert not errors, "\n".join(errors[:10])
        assert len(acked) == CLIENTS * KEEP_PER_CLIENT
        assert counts.get("step", 0) > 0 and counts.get("create_delete", 0) > 0

        metrics = server.metrics()
        assert not_ok_calls(metrics) == {}

        # Nothing lost, now and across a graceful restart; no short-lived session left over.
        def check(client):
            names = [s.name for s in client.list_sessions(name_prefix="soak/")]
            assert sorted(names) == sorted(acked), "sessions left over or missing"
            for name, epoch in acked.items():
                assert client.get_session(name).last_epoch == epoch, name

        with lrsched.Client(server.addr, token=TOKEN) as c:
            check(c)
        assert server.stop() == 0
        server.start()
        with lrsched.Client(server.addr, token=TOKEN) as c:
            check(c)

        # Not under ASan (LRSCHED_SANITIZED, scripts/test.sh's sanitized stage): its quarantine,
        # shadow memory and fake stacks per thread make RSS measure the sanitizer (1.1 GB after
        # the warm-up on 2026-12-03); the normal build's run holds the bound.
        if os.environ.get("LRSCHED_SANITIZED") != "1":
            assert rss_end - rss_warm <= max(32 * 1024, rss_warm // 2), (
                f"server memory grew from {rss_warm} KiB to {rss_end} KiB")
    finally:
        server.kill()
