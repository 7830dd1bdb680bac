"""`lrsched amend`, `lrsched history` and `lrsched plot --session` (issue #18) end to end against a
real lrsched-server process: every kind of amendment from the command line (--continue-with,
--set, --scale) with its values checked against real torch where torch is installed (skipped,
visibly, without it), --dry-run's two futures (table and --json), --if-revision, history's
table, --json and --from/--to, the plot's record (solid), lookahead (dashed), amendment markers
labelled with their reasons and --dry-run's second future, and every bad flag refused with exit
code 2 and a message naming it.

Run by scripts/test.sh with LRSCHED_BIN_DIR set to the build directory.
"""
import json
import xml.etree.ElementTree as ET

import pytest

from test_server_process import BIN_DIR, COSINE, Server, lrsched, ok

pytestmark = pytest.mark.skipif(
    not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (the build directory; run scripts/test.sh)")

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("amend-cli"))
    try:
        yield s.start()
    finally:
        s.close()


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "spec.json"
    p.write_text(json.dumps(COSINE))
    return p


def as_json(*args, server=None):
    return json.loads(ok(*args, "--json", server=server))


def create(server, spec, name, steps):
    ok("create", name, f"--spec={spec}", server=server)
    for e in range(steps):
        ok("step", name, f"--if-epoch={e}", server=server)


def torch_lrs(torch, scheduler, steps, lr=0.1, momentum=0.9):
    """lr at epochs 0..steps of `scheduler` on a torch SGD holding lr/momentum."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=momentum)
    kwargs = {k: v for k, v in scheduler.items() if k != "type"}
    sched = getattr(torch.optim.lr_scheduler, scheduler["type"])(opt, **kwargs)
    out = []
    for i in range(steps + 1):
        out.append(opt.param_groups[0]["lr"])
        if i < steps:
            opt.step()
            sched.step()
    return out


def test_amend_each_kind_and_history(server, spec, tmp_path):
    torch = pytest.importorskip("torch")
    create(server, spec, "cli/a", 10)
    # --set: T_max 100 -> 200 from epoch 10, values as a fresh torch trace of the new spec.
    got = as_json("amend", "cli/a", "--set", "T_max=200", "--reason=extend", server=server)
    assert got["amendment"]["kind"] == "reparameterize" and got["amendment"]["args"] == {
        "T_max": 200}
    assert got["amendment"]["applied"] and got["session"]["schedule_revision"] > 0
    for e in range(10, 20):
        ok("step", "cli/a", f"--if-epoch={e}", server=server)
    # --continue-with at a chosen later epoch: cooled down over 10 steps.
    cool = tmp_path / "cool.json"
    cool.write_text(json.dumps({"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.0,
                                "total_iters": 10}))
    got = as_json("amend", "cli/a", f"--continue-with={cool}", "--at-epoch=25",
                  "--reason=cool down", server=server)
    assert got["amendment"]["at_epoch"] == 25 and not got["amendment"]["applied"]
    # --scale with --if-revision: the session's current revision wins, a stale one is ABORTED.
    rev = as_json("get", "cli/a", server=server)["revision"]
    stale = lrsched("amend", "cli/a", "--scale=0.5", f"--if-revision={rev - 1}", server=server)
    assert stale.returncode == 1 and "ABORTED" in stale.stderr
    text = ok("amend", "cli/a", "--scale=0.5", f"--if-revision={rev}", "--at-epoch=30",
              "--reason=halve", server=server)
    assert "amended cli/a: scale" in text and "pending" in text
    for e in range(20, 40):
        ok("step", "cli/a", f"--if-epoch={e}", server=server)
    h = as_json("history", "cli/a", server=server)
    assert [(a["kind"], a["at_epoch"], a["reason"]) for a in h["amendments"]] == [
        ("reparameterize", 10, "extend"), ("continue_with", 25, "cool down"),
        ("scale", 30, "halve")]
    lrs = {e["epoch"]: e["lr"][0] for e in h["epochs"]}
    assert sorted(lrs) == list(range(41))
    first = torch_lrs(torch, COSINE["scheduler"], 10)
    longer = torch_lrs(torch, dict(COSINE["scheduler"], T_max=200), 25)
    cooled = torch_lrs(torch, json.loads(cool.read_text()), 15, lr=longer[25])
    for e in range(0, 10):  # at 10 the record holds the value in force after the amendment
        assert lrs[e] == first[e], e
    for e in range(10, 26):
        assert lrs[e] == longer[e], e
    for e in range(25, 30):
        assert lrs[e] == cooled[e - 25], e
    for e in range(30, 36):
        assert lrs[e] == cooled[e - 25] * 0.5, e
    # --from/--to and the table.
    part = as_json("history", "cli/a", "--from=3", "--to=5", server=server)
    assert [e["epoch"] for e in part["epochs"]] == [3, 4, 5]
    table = ok("history", "cli/a", "--from=3", "--to=5", server=server)
    assert "AT_EPOCH" in table and "cool down" in table and "EPOCH" in table


def test_dry_run_table_and_json(server, spec):
    create(server, spec, "cli/dry", 3)
    before = as_json("get", "cli/dry", server=server)
    got = as_json("amend", "cli/dry", "--scale=0.5", "--dry-run", "--window=5", server=server)
    assert got["dry_run"] and [r["epoch"] for r in got["current"]] == [3, 4, 5, 6, 7]
    assert [r["lr"][0] * 0.5 for r in got["current"]] == [r["lr"][0] for r in got["amended"]]
    table = ok("amend", "cli/dry", "--set", "T_max=50", "--set=eta_min=0", "--dry-run",
               "--window=4", server=server).splitlines()
    assert table[0].startswith("dry run: would amend cli/dry: reparameterize")
    head = [line for line in table if line.startswith("EPOCH")][0].split()
    assert head == ["EPOCH", "LR_NOW", "LR_AMENDED", "MOMENTUM_NOW", "MOMENTUM_AMENDED"]
    assert len(table) == table.index([l for l in table if l.startswith("EPOCH")][0]) + 5
    after = as_json("get", "cli/dry", server=server)
    assert after["revision"] == before["revision"]
    assert as_json("history", "cli/dry", server=server)["amendments"] == []


def test_bad_flags_are_named(server, spec, tmp_path):
    create(server, spec, "cli/bad", 2)
    not_json = tmp_path / "bad.json"
    not_json.write_text("{nope")
    cases = [
        ([], "exactly one of"),
        (["--scale=0.5", "--set", "T_max=3"], "exactly one of"),
        (["--scale=0"], "--scale"),
        (["--scale=nan"], "--scale"),
        (["--scale=-1"], "--scale"),
        (["--set", "T_max"], "--set"),
        (["--set", "=3"], "--set"),
        (["--set", "T_max=3", "--set", "T_max=4"], "T_max given twice"),
        (["--continue-with=/no/such/file.json"], "--continue-with"),
        ([f"--continue-with={not_json}"], "--continue-with"),
        (["--scale=0.5", "--groups=0,x"], "--groups"),
        (["--scale=0.5", "--groups=1,1"], "--groups"),
        (["--set", "T_max=3", "--groups=0"], "--groups"),
        (["--scale=0.5", "--at-epoch=-1"], "--at-epoch"),
        (["--scale=0.5", "--reason=" + "x" * 2000], "--reason"),
        (["--scale=0.5", "--window=5"], "--window"),
        (["--scale=0.5", "--dry-run", "--window=20000"], "--window"),
    ]
    for flags, word in cases:
        out = lrsched("amend", "cli/bad", *flags, server=server)
        assert out.returncode == 2 and word in out.stderr, (flags, out.stderr)
    out = lrsched("amend", "cli/bad", "--scale=notanumber", server=server)
    assert out.returncode != 0 and "scale" in out.stderr  # absl's own parse error: exit 1
    assert lrsched("amend", server=server).returncode == 2
    # The server's refusals: exit 1 naming the field; no such session: 4.
    past = lrsched("amend", "cli/bad", "--scale=0.5", "--at-epoch=0", server=server)
    assert past.returncode == 1 and "FAILED_PRECONDITION" in past.stderr
    unknown = lrsched("amend", "cli/bad", "--set", "no_such_kw=1", server=server)
    assert unknown.returncode == 1 and "no_such_kw" in unknown.stderr
    assert lrsched("amend", "cli/none", "--scale=0.5", server=server).returncode == 4
    assert lrsched("history", "cli/none", server=server).returncode == 4
    for flags, word in [(["--from=-1"], "--from"), (["--from=5", "--to=2"], "--to")]:
        out = lrsched("history", "cli/bad", *flags, server=server)
        assert out.returncode == 2 and word in out.stderr, (flags, out.stderr)
    out = lrsched("plot", "--session=cli/bad", "--scale=0.5", "--out=x.svg", server=server)
    assert out.returncode == 2 and "--dry-run" in out.stderr
    out = lrsched("plot", "--session=cli/bad", "--dry-run", "--out=x.svg", server=server)
    assert out.returncode == 2 and "--dry-run" in out.stderr


def parse(path):
    root = ET.parse(path).getroot()
    lines = lambda cls: [e for e in root.iter(SVG + "polyline") if e.get("class") == cls]
    texts = lambda cls: [e.text for e in root.iter(SVG + "text") if e.get("class") == cls]
    markers = [e for e in root.iter(SVG + "line") if e.get("class") == "marker"]
    return lines("past"), lines("curve"), markers, texts("marker-label"), texts("legend")


def test_plot_session_draws_record_lookahead_and_amendments(server, spec, tmp_path):
    create(server, spec, "cli/plot", 20)
    ok("amend", "cli/plot", "--scale=0.5", "--reason=loss spike", server=server)
    for e in range(20, 30):
        ok("step", "cli/plot", f"--if-epoch={e}", server=server)
    ok("amend", "cli/plot", "--set", "T_max=60", "--at-epoch=40", "--reason=shorter run",
       server=server)
    out = tmp_path / "s.svg"
    ok("plot", "--session=cli/plot", "--steps=30", f"--out={out}", server=server)
    past, future, markers, labels, legend = parse(out)
    # The past solid (epochs 0..30 from the record), the lookahead dashed (30 epochs).
    assert len(past) == 1 and len(past[0].get("points").split()) == 31
    assert past[0].get("stroke-dasharray") is None
    assert len(future) == 1 and len(future[0].get("points").split()) == 30
    assert future[0].get("stroke-dasharray") is not None
    assert past[0].get("stroke") == future[0].get("stroke")
    assert len(markers) == 2 and labels == ["loss spike", "shorter run (pending)"]
    assert legend == ["session cli/plot"]
    # --dry-run: both futures, the amended one in another colour, and the proposal marked.
    dry = tmp_path / "dry.svg"
    ok("plot", "--session=cli/plot", "--dry-run", "--scale=2", "--reason=what if",
       "--steps=20", f"--out={dry}", server=server)
    past, future, markers, labels, legend = parse(dry)
    assert len(past) == 1 and len(future) == 2
    assert future[0].get("stroke") != future[1].get("stroke")
    assert all(len(f.get("points").split()) == 20 for f in future)
    assert "what if (dry run)" in labels and len(markers) == 3
    assert legend == ["session cli/plot (now)", "session cli/plot (amended)"]
    assert as_json("history", "cli/plot", server=server)["amendments"][-1]["reason"] == \
        "shorter run"  # the dry run recorded nothing
