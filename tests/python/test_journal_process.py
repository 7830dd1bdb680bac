"""SqliteStore's journal (issue #20) with the real lrsched-server, across crashes:

(a) a torn tail at every byte offset of the last record: the state before that record is
    served, and the start-up log says what was dropped (but the same cut of a record that
    COMMITTED counts as acknowledged is refused);
(b) a crash inside the applier's SQLite transaction, before and after its COMMIT
    (LRSCHED_TEST_CRASH_POINT): every acknowledged step is there once, replay twice = once;
(c) a full disk during the append (LRSCHED_TEST_JOURNAL_ENOSPC=N:K): UNAVAILABLE naming the
    cause, reads go on, later steps succeed; after kill -9 every acknowledged step is there and
    none of the refused ones;
(e) a clean stop applies everything: lrsched.db alone, read with Python's sqlite3, holds every
    session at its last revision, and the journal directory is empty.
(d), kill -9 under both --sqlite_synchronous values with the journal on and off, is
test_server_process.py's test_acknowledged_steps_survive_kill_9.

Run by scripts/test.sh with LRSCHED_BIN_DIR set to the build directory. Each test starts its
own servers on 127.0.0.1:0 and stops them; every loop is bounded in count and in time.
"""
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import time

import pytest

import journal_files as jf
from test_server_process import BIN_DIR, COSINE, Server, local_values, lrsched
from test_store_process import start_expecting_failure

pytestmark = pytest.mark.skipif(
    not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (the build directory; run scripts/test.sh)")

KEEP_IN_JOURNAL = "--journal_apply_delay=1h"  # nothing reaches SQLite before a clean stop
# Under ASan (scripts/test.sh's sanitized stage) the every-offset test restarts the server at
# every 4th offset and both ends (48 s for all ~40 there; journal_test checks every offset of
# the reader under ASan in well under a second).
OFFSET_EVERY = 4 if os.environ.get("LRSCHED_SANITIZED") == "1" else 1
TORN = re.compile(r"event=journal_torn_tail .*")
REPLAYED = re.compile(r"event=journal_replayed .*?records=(\d+)")


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(dict(COSINE, steps=0)))
    return path


def ok(*args, server):
    out = lrsched(*args, "--json", server=server)
    assert out.returncode == 0, (args, out.stderr, "server exit code:", server.proc.poll(),
                                 server.log()[-3000:])
    return json.loads(out.stdout) if out.stdout.strip() else None


def get(server, name):
    return ok("get", name, server=server)


def step_to(server, name, epochs):
    for k in range(epochs):
        assert ok("step", name, f"--if-epoch={k}", server=server)["last_epoch"] == k + 1


def replayed(server):
    m = REPLAYED.search(server.log())
    assert m, "no event=journal_replayed in the log:\n" + server.log()
    return int(m.group(1))


def check_session(server, spec, name, at_least, at_most=None):
    """The session (created from `spec`) has last_epoch in [at_least, at_most], one revision
    per mutation and the local simulate's learning rate there. Returns last_epoch."""
    got = get(server, name)
    at_most = at_least if at_most is None else at_most
    assert at_least <= got["last_epoch"] <= at_most, (name, at_least, at_most, got)
    assert got["revision"] == got["last_epoch"] + 1, got  # created at 1, +1 per step
    assert got["lr"] == local_values(spec, got["last_epoch"])[0], got
    return got["last_epoch"]


# --- (a) torn tail ----------------------------------------------------------------------------

def test_torn_tail_at_every_offset_of_the_last_record(tmp_path, spec):
    data = tmp_path / "data"
    server = Server(data, KEEP_IN_JOURNAL)
    server.start()
    try:
        ok("create", "t", f"--spec={spec}", server=server)
        step_to(server, "t", 3)
        ok("create", "d", f"--spec={spec}", server=server)
        step_to(server, "d", 1)
        # A real crash mid-append happens before COMMITTED could count the record: keep the
        # file as it was before the last call, so a store that checks it against the journal
        # sees what it would have seen.
        committed = (data / "COMMITTED").read_bytes()
        out = lrsched("delete", "d", server=server)  # the last record: short, one delete
        assert out.returncode == 0, out.stderr
        server.kill()  # SIGKILL: everything is still in the journal
    finally:
        server.kill()

    segment = jf.segments(data)[-1]
    all_records = sum(len(jf.records(p)) for p in jf.segments(data))
    last = jf.records(segment)[-1]
    assert [(e[0], e[2]) for e in last.entries] == [(jf.DELETE, "d")], last
    start, end = last.offset, last.offset + last.size
    assert end == os.path.getsize(segment)
    assert last.size <= 64, last  # the bound on the restarts below
    run = tmp_path / "run"
    for length in sorted({*range(start, end + 1, OFFSET_EVERY), end - 1, end}):
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(data, run)
        os.truncate(os.path.join(jf.journal_dir(run), os.path.basename(segment)), length)
        (run / "COMMITTED").write_bytes(committed)
        server = Server(run)
        server.start()
        try:
            torn = TORN.findall(server.log())
            assert check_session(server, spec, "t", 3) == 3
            gone = lrsched("get", "d", server=server)
            if length == end:  # the whole record: the delete happened
                assert gone.returncode == 4, gone.stderr
                assert not torn and replayed(server) == all_records
            else:
                assert check_session(server, spec, "d", 1) == 1, length
                assert replayed(server) == all_records - 1
                if length == start:  # nothing of the record was written: nothing is torn
                    assert not torn, torn
                else:
                    assert len(torn) == 1, (length, server.log())
                    assert os.path.basename(segment) in torn[0], torn
                    assert f"offset={start}" in torn[0] and f"bytes={length - start}" in torn[0]
        finally:
            server.kill()

    # The same cut with COMMITTED as the kill left it, i.e. the record was acknowledged: not a
    # torn tail but lost data, which the server refuses to serve over.
    shutil.rmtree(run)
    shutil.copytree(data, run)
    os.truncate(os.path.join(jf.journal_dir(run), os.path.basename(segment)), start + 1)
    code, err = start_expecting_failure(run)
    assert code == 1 and "--accept_data_loss" in err, err
    assert str(run / "COMMITTED") in err, err


# --- (b) crash during the apply ---------------------------------------------------------------

@pytest.mark.parametrize("point", ["apply_before_commit", "apply_after_commit"])
def test_crash_during_apply_keeps_every_step_once(tmp_path, spec, point, monkeypatch):
    names = [f"c/{i}" for i in range(3)]
    epochs = {name: 0 for name in names}  # the last acknowledged last_epoch of each
    monkeypatch.setenv("LRSCHED_TEST_CRASH_POINT", point)
    # No core file from the abort (core_pattern may name one in the working directory).
    core = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))
    server = Server(tmp_path / "data", "--journal_apply_delay=2s")
    try:
        server.start()  # the environment and the limit are copied at the spawn
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, core)
    monkeypatch.delenv("LRSCHED_TEST_CRASH_POINT")
    try:
        for name in names:
            ok("create", name, f"--spec={spec}", server=server)
        deadline = time.monotonic() + 60
        for i in range(2000):  # until the applier's first batch aborts the server
            if time.monotonic() > deadline:
                break
            name = names[i % len(names)]
            out = lrsched("step", name, f"--if-epoch={epochs[name]}", "--json", "--timeout=5s",
                          server=server, timeout=15)
            if out.returncode != 0:
                break
            reply = json.loads(out.stdout)
            assert reply["advanced"], reply
            epochs[name] = reply["last_epoch"]
        assert server.proc.wait(30) == -signal.SIGABRT, server.log()
    finally:
        server.kill()
    assert sum(epochs.values()) > 0, "no step was acknowledged before the crash"

    server.start()  # no crash point now
    try:
        # At most the one step in flight at the crash more: appended, its reply lost.
        got = {name: check_session(server, spec, name, epochs[name], epochs[name] + 1)
               for name in names}
        server.kill()  # and once more (the replay was applied at the start): the same state
        server.start()
        for name in names:
            assert check_session(server, spec, name, got[name]) == got[name]
        assert server.stop() == 0
    finally:
        server.kill()


# --- (c) full disk during the append ----------------------------------------------------------

def test_full_disk_is_refused_cleanly_and_recovers(tmp_path, spec, monkeypatch):
    n, k = 6, 3
    monkeypatch.setenv("LRSCHED_TEST_JOURNAL_ENOSPC", f"{n}:{k}")
    server = Server(tmp_path / "data")
    server.start()
    monkeypatch.delenv("LRSCHED_TEST_JOURNAL_ENOSPC")
    try:
        ok("create", "f", f"--spec={spec}", server=server)
        acked, pattern = 0, ""
        for _ in range(n + k + 4):
            # A plain step (no --if-epoch) is not retried by the CLI: one call, one append.
            out = lrsched("step", "f", "--json", "--timeout=10s", server=server, timeout=30)
            if out.returncode == 0:
                acked += 1
                pattern += "o"
                assert json.loads(out.stdout)["last_epoch"] == acked
                continue
            pattern += "x"
            assert out.returncode == 3 and "UNAVAILABLE" in out.stderr, out.stderr
            assert "No space left on device" in out.stderr, out.stderr
            # Reads go on, and the refused step left nothing behind in memory either.
            assert check_session(server, spec, "f", acked) == acked
        assert re.fullmatch(r"o+x{%d}o+" % k, pattern), pattern
        server.kill()  # SIGKILL: what was acknowledged is in the journal only
    finally:
        server.kill()
    server.start()
    try:
        assert check_session(server, spec, "f", acked) == acked
        assert server.stop() == 0
    finally:
        server.kill()


# --- (e) a clean stop leaves a complete lrsched.db --------------------------------------------

def test_clean_stop_leaves_a_complete_database(tmp_path, spec):
    data = tmp_path / "data"
    server = Server(data, KEEP_IN_JOURNAL)
    server.start()
    try:
        names = [f"e/{i}" for i in range(5)]
        for i, name in enumerate(names):
            ok("create", name, f"--spec={spec}", server=server)
            step_to(server, name, i + 1)
        ok("create", "gone", f"--spec={spec}", server=server)
        assert lrsched("delete", "gone", server=server).returncode == 0
        mutations = len(names) + sum(range(1, len(names) + 1)) + 2
        expected = {name: get(server, name) for name in names}
        assert server.stop() == 0, server.log()
    finally:
        server.kill()

    assert not os.path.exists(jf.journal_dir(data)) or jf.segments(data) == []

    alone = tmp_path / "alone"  # the database file without its -wal or anything else
    alone.mkdir()
    shutil.copy(data / "lrsched.db", alone / "lrsched.db")
    db = sqlite3.connect(f"file:{alone / 'lrsched.db'}?mode=ro", uri=True)
    try:
        rows = {name: (bytes(value), revision)
                for name, value, revision in db.execute("SELECT name, value, revision FROM sessions")}
        # The journal's numbers continue the database's: one record per call here, from 1.
        assert db.execute("SELECT value FROM meta WHERE key = 'commit_seq'").fetchall() == [
            (mutations,)]
    finally:
        db.close()
    assert sorted(rows) == sorted(names)
    for name, want in expected.items():
        value, revision = rows[name]
        assert revision == want["revision"], (name, revision, want)
        header, body = value.split(b"\n", 1)
        assert header.startswith(b"#lrsched-record/"), header
        record = json.loads(body)
        assert record["name"] == name and record["revision"] == want["revision"], record
        assert record["state_dict"]["last_epoch"] == want["last_epoch"], record  # CosineAnnealingLR
