"""Damaged stored records against the real lrsched-server process (issue #14).

A byte flipped inside one session's record in lrsched.db made the server die with SIGSEGV at
start-up (exit 139, no log line); two edited bytes made a session resume from a plausible but
wrong state. Now: start-up refuses with exit 1 and a line naming the session, the data file and
the flag that goes on without it; with --damaged_records=quarantine the others are served, the
damaged name answers DATA_LOSS (counted in lrsched_damaged_records) until it is deleted.
"""
import os
import re
import signal
import subprocess
import urllib.request

from test_server_process import CALL_TIMEOUT, Server, lrsched, server_bin

COSINE = ('{"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},'
          ' "scheduler": {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": 0.001}}')


def populate(data_dir, tmp_path):
    """Sessions runs/a, runs/b (stepped 3 times) and runs/c, then a graceful stop."""
    spec = tmp_path / "spec.json"
    spec.write_text(COSINE)
    s = Server(data_dir).start()
    try:
        for name in ("runs/a", "runs/b", "runs/c"):
            out = lrsched("create", name, f"--spec={spec}", server=s)
            assert out.returncode == 0, out.stderr
        for epoch in range(3):
            out = lrsched("step", "runs/b", f"--if-epoch={epoch}", server=s)
            assert out.returncode == 0, out.stderr
    finally:
        assert s.stop(signal.SIGTERM) == 0


def edit_record_in_file(data_dir, old, new):
    """Changes bytes inside runs/b's record in the database file itself, as damage would: the
    SQLite page stays well-formed, so only the record's own checksum can tell."""
    path = os.path.join(data_dir, "lrsched.db")
    raw = bytearray(open(path, "rb").read())
    at = raw.find(b'"name":"runs/b"')
    assert at > 0, "runs/b's record not found in the database file"
    hit = raw.find(old, at)
    assert hit > 0 and hit - at < 200, (old, hit, at)
    raw[hit:hit + len(old)] = new
    open(path, "wb").write(bytes(raw))


def test_damaged_record_refuses_start_naming_it_then_quarantine_serves_the_rest(tmp_path):
    data_dir = tmp_path / "data"
    populate(data_dir, tmp_path)
    edit_record_in_file(data_dir, b'"revision":4', b'"revision":7')  # two bytes' worth

    refused = subprocess.run([server_bin(), "--listen=127.0.0.1:0", f"--data_dir={data_dir}"],
                             capture_output=True, text=True, timeout=CALL_TIMEOUT)
    assert refused.returncode == 1, refused.stderr  # was 139 (SIGSEGV)
    line = next(l for l in refused.stderr.splitlines() if "event=start_failed" in l)
    assert "code=DATA_LOSS" in line
    assert os.path.join(str(data_dir), "lrsched.db") in line
    assert 'session \\"runs/b\\"' in line and "checksum mismatch" in line
    assert "--damaged_records=quarantine" in line

    s = Server(data_dir, "--damaged_records=quarantine", "--metrics_listen=127.0.0.1:0").start()
    try:
        assert lrsched("get", "runs/a", server=s).returncode == 0
        assert lrsched("get", "runs/c", server=s).returncode == 0
        for args in (("get", "runs/b"), ("step", "runs/b"), ("lr", "runs/b"),
                     ("export", "runs/b")):
            out = lrsched(*args, server=s)
            assert out.returncode != 0 and "DATA_LOSS" in out.stderr, (args, out.stderr)
        port = re.search(r"event=metrics_listening port=(\d+)", s.log()).group(1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        assert b"\nlrsched_damaged_records 1\n" in metrics
        assert "event=record_damaged name=runs/b" in s.log()
        # Delete discards the damaged record; the name is free again.
        out = lrsched("delete", "runs/b", server=s)
        assert out.returncode == 0, out.stderr
        assert lrsched("get", "runs/b", server=s).returncode == 4  # NOT_FOUND
    finally:
        assert s.stop(signal.SIGTERM) == 0
    # Nothing damaged is left: the default (refuse) starts again.
    Server(data_dir).start().close()


def test_bad_damaged_records_flag_is_refused(tmp_path):
    out = subprocess.run([server_bin(), "--listen=127.0.0.1:0", f"--data_dir={tmp_path}",
                          "--damaged_records=ignore"],
                         capture_output=True, text=True, timeout=CALL_TIMEOUT)
    assert out.returncode == 1 and "--damaged_records: refuse or quarantine" in out.stderr
