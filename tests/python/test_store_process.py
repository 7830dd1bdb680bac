"""lrsched-server over a damaged SQLite WAL, end to end: after acknowledged creates, a kill -9
and a cut lrsched.db-wal, the server refuses to start (exit 1, naming the files and
--accept_data_loss) instead of serving the older state; with --accept_data_loss it serves that
state once and starts normally afterwards; a damaged DATA_DIR/COMMITTED is refused.

Run by scripts/test.sh with LRSCHED_BIN_DIR set to the build directory. Standard library only;
the server process fixture is test_server_process.py's.
"""
import json
import os
import subprocess

import pytest

from test_server_process import BIN_DIR, CALL_TIMEOUT, COSINE, Server, lrsched, server_bin

pytestmark = pytest.mark.skipif(
    not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (the build directory; run scripts/test.sh)")

WAL_HEADER = 32
FRAME = 24 + 4096
# The WAL's own detection: without the journal (which would replay what a cut WAL lost, below).
NO_JOURNAL = "--journal=false"


def start_expecting_failure(data_dir, *flags):
    """Runs the server, which must exit by itself; returns (exit code, stderr)."""
    out = subprocess.run([server_bin(), "--listen=127.0.0.1:0", f"--data_dir={data_dir}", *flags],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=CALL_TIMEOUT)
    return out.returncode, out.stderr


def session_names(server):
    out = lrsched("list", "--json", server=server)
    assert out.returncode == 0, out.stderr
    return sorted(s["name"] for s in json.loads(out.stdout)["sessions"])


def create_and_cut_wal(tmp_path, *flags):
    """30 acknowledged creates, a kill -9, then the WAL cut in half; returns (data dir, names,
    the cut WAL's path)."""
    data_dir = tmp_path / "data"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(COSINE))
    server = Server(data_dir, *flags)
    server.start()
    try:
        names = [f"loss/{i:02d}" for i in range(30)]
        for name in names:  # one acknowledged commit each
            out = lrsched("create", name, f"--spec={spec}", server=server)
            assert out.returncode == 0, out.stderr
        server.kill()  # SIGKILL: the WAL keeps every commit, none checkpointed
    finally:
        server.kill()
    wal = os.path.join(data_dir, "lrsched.db-wal")
    frames = (os.path.getsize(wal) - WAL_HEADER) // FRAME
    assert frames > 2
    os.truncate(wal, WAL_HEADER + frames // 2 * FRAME + 100)
    return data_dir, names, wal


def test_cut_wal_is_refused_until_accepted(tmp_path):
    data_dir, names, wal = create_and_cut_wal(tmp_path, NO_JOURNAL)
    wal_bytes = open(wal, "rb").read()

    code, err = start_expecting_failure(data_dir, NO_JOURNAL)
    assert code == 1, err
    assert "acknowledged commits are missing" in err, err
    assert os.path.join(str(data_dir), "COMMITTED") in err, err
    assert "records #30 acknowledged" in err, err
    assert "--accept_data_loss" in err, err
    assert open(wal, "rb").read() == wal_bytes  # the evidence is left as it was

    server = Server(data_dir, "--accept_data_loss", NO_JOURNAL)
    server.start()
    try:
        assert "event=data_loss_accepted" in server.log()
        kept = session_names(server)
        assert 0 < len(kept) < 30
        assert kept == names[:len(kept)]  # the older state: a prefix of the history
        assert server.stop() == 0
    finally:
        server.kill()

    server = Server(data_dir, NO_JOURNAL)  # the loss was accepted once: no flag needed any more
    server.start()
    try:
        assert session_names(server) == kept
        assert server.stop() == 0
    finally:
        server.kill()


def test_cut_wal_is_healed_by_the_journal(tmp_path):
    """With the journal (the default), what the cut WAL lost is still in the journal's newest
    segment (applied segments go, the newest stays): the replay restores every session."""
    data_dir, names, _ = create_and_cut_wal(tmp_path)
    server = Server(data_dir)
    server.start()
    try:
        assert session_names(server) == names
        assert server.stop() == 0
    finally:
        server.kill()


def test_damaged_committed_file_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    server = Server(data_dir)
    server.start()
    try:
        assert session_names(server) == []
        assert server.stop() == 0
    finally:
        server.kill()
    committed = os.path.join(data_dir, "COMMITTED")
    text = open(committed).read()
    assert text.startswith("lrsched committed seq=")
    with open(committed, "w") as f:
        f.write(text.replace("seq=0", "seq=1", 1))
    code, err = start_expecting_failure(data_dir)
    assert code == 1, err
    assert committed + ": damaged" in err and "--accept_data_loss" in err, err
