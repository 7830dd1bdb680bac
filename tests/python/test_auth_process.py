"""lrsched-server's --tokens_file and --metrics_listen as a real process: a malformed tokens file
stops start-up naming the line (and not the token), tokens without TLS are warned about, SIGHUP
re-reads the file (a broken edit keeps the old tokens), and /metrics answers over HTTP.
"""
import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from ready import READY_TIMEOUT, wait_until_healthy

BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
SERVER_BIN = os.path.join(BIN_DIR, "server", "lrsched-server") if BIN_DIR else None
if not BIN_DIR or not os.access(SERVER_BIN, os.X_OK):
    pytest.skip("no lrsched-server (set LRSCHED_BIN_DIR; run scripts/test.sh)",
                allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402

READER = "reader-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
SPEC = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
        "scheduler": {"type": "StepLR", "step_size": 2}}


def start(tmp_path, *flags):
    log_path = tmp_path / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([SERVER_BIN, "--listen=127.0.0.1:0", f"--data_dir={tmp_path / 'd'}",
                             "--sqlite_synchronous=normal", *flags],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        # The log line tells the port chosen; the health check (open without a token) tells the
        # server answers.
        while True:
            m = re.search(r"event=listening addr=(\S+)", log_path.read_text(errors="replace"))
            if m:
                break
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.02)
        wait_until_healthy(m.group(1), proc, deadline, log=log_path.read_text,
                           what="lrsched-server")
    except BaseException:
        proc.kill()
        proc.wait(30)
        raise
    return proc, m.group(1), log_path


def wait_for_log(log_path, text, timeout=READY_TIMEOUT):
    """Waits until the log holds `text` (a SIGHUP is handled, and logged, a moment later)."""
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{log_path.read_text()}"
        time.sleep(0.02)


def test_malformed_tokens_file_refuses_to_start(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# ok\n{ADMIN} admin\n{READER} superuser\n")
    out = subprocess.run([SERVER_BIN, "--listen=127.0.0.1:0", f"--data_dir={tmp_path / 'd'}",
                          f"--tokens_file={tokens}"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "event=bad_tokens_file" in out.stderr
    assert f"{tokens}:3: unknown role" in out.stderr
    assert READER not in out.stderr and ADMIN not in out.stderr


def test_tokens_sighup_and_metrics(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ADMIN} admin\n{READER} reader\n")
    proc, addr, log_path = start(tmp_path, f"--tokens_file={tokens}",
                                 "--metrics_listen=127.0.0.1:0")
    try:
        log = log_path.read_text()
        assert "event=tokens_without_tls" in log
        port = int(re.search(r"event=metrics_listening port=(\d+)", log).group(1))
        with lrsched.Client(addr, token=ADMIN) as admin, \
                lrsched.Client(addr, token=READER) as reader, lrsched.Client(addr) as anon:
            admin.create_session("s", SPEC)
            assert reader.get_session("s").last_epoch == 0
            with pytest.raises(lrsched.LrschedError) as e:
                reader.step("s")
            assert e.value.code.name == "PERMISSION_DENIED"
            with pytest.raises(lrsched.LrschedError) as e:
                anon.get_session("s")
            assert e.value.code.name == "UNAUTHENTICATED"

            # A broken edit keeps the tokens in force; a good one replaces them.
            tokens.write_text("garbage\n")
            proc.send_signal(signal.SIGHUP)
            wait_for_log(log_path, "event=tokens_reload_failed")
            assert reader.get_session("s").last_epoch == 0
            tokens.write_text(f"{ADMIN} admin\n")
            proc.send_signal(signal.SIGHUP)
            wait_for_log(log_path, "event=tokens_reloaded count=1")
            with pytest.raises(lrsched.LrschedError) as e:
                reader.get_session("s")
            assert e.value.code.name == "UNAUTHENTICATED"
            admin.step("s", if_epoch=0)

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        assert 'lrsched_rpc_total{method="lrsched.v1.LrScheduler/Step",code="OK"} 1' in text
        assert ('lrsched_rpc_total{method="lrsched.v1.LrScheduler/Step",'
                'code="PERMISSION_DENIED"} 1') in text
        assert "lrsched_sessions 1" in text
        assert re.search(r"^lrsched_store_batch_size_sum 2$", text, re.M)  # create + step
        # Two commits are far from a checkpoint, and FULL (the default) syncs in its commits.
        for counter in ("wal_checkpoints_total", "wal_checkpoint_seconds_total",
                        "wal_syncs_total"):
            assert re.search(rf"^lrsched_store_{counter} 0$", text, re.M), counter
        # Info lines are written by the log's thread a few milliseconds late: wait for it.
        access = r"event=access method=Step session=s epoch=1 advanced=true code=OK"
        deadline = time.monotonic() + 10
        while not re.search(access, log_path.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        log = log_path.read_text()
        assert re.search(access, log)
        assert READER not in log and ADMIN not in log  # tokens are never logged
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
