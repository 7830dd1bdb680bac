"""The `lrsched` CLI end to end against a real lrsched-server process: every subcommand, the
--json outputs, the exit-code contract (0 ok, 1 refused, 2 usage, 3 unreachable, 4 not found,
5 not serving), watch until SIGINT or deletion, export/import round trips, and `plot` output
parsed as SVG (a curve per input, axes, legend) for local specs and for a live session.

Run by scripts/test.sh with LRSCHED_BIN_DIR set to the build directory. Standard library only;
the server process fixture is test_server_process.py's.
"""
import json
import pathlib
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from test_server_process import BIN_DIR, COSINE, Server, cli_bin, lrsched, ok

pytestmark = pytest.mark.skipif(
    not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (the build directory; run scripts/test.sh)")

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "examples"
SVG = "{http://www.w3.org/2000/svg}"
PLATEAU = {"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.1}]},
           "scheduler": {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("cli"))
    try:
        yield s.start()
    finally:
        s.close()


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "spec.json"
    p.write_text(json.dumps(dict(COSINE, steps=20)))
    return p


def as_json(*args, server=None):
    return json.loads(ok(*args, "--json", server=server))


def local_trace(spec_path, steps):
    return json.loads(ok("simulate", str(spec_path), f"--steps={steps}"))


def test_help_documents_the_exit_codes():
    out = lrsched("--help")
    text = out.stdout + out.stderr
    for line in ("1 the server refused", "2 bad usage", "3 server unreachable", "4 no such session"):
        assert line in text
    assert "lrsched plot" in ok("help") or "plot FILE" in ok("help")


def test_help_lists_the_clis_own_flags():
    out = subprocess.run([cli_bin(), "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    assert "usage: lrsched COMMAND" in text
    for flag in ("--steps", "--server", "--token", "--if_epoch", "--timeout", "--tls_ca", "--out"):
        assert flag in text, flag
    assert "No flags matched" not in text
    # Only ours: not Abseil's or gRPC's own (--helpfull shows those).
    assert "--flagfile" not in text and "--fromenv" not in text
    short = subprocess.run([cli_bin(), "--helpshort"], capture_output=True, text=True, timeout=30)
    assert "--steps (simulate: number of steps" in short.stdout + short.stderr


def test_session_lifecycle_json(server, spec):
    created = as_json("create", "life/a", f"--spec={spec}", "--labels=team=x", server=server)
    assert created["name"] == "life/a" and created["labels"] == {"team": "x"}
    assert created["deterministic"] is True and created["revision"] == 1
    stepped = as_json("step", "life/a", "--if-epoch=0", server=server)
    assert stepped["advanced"] and stepped["last_epoch"] == 1
    got = as_json("get", "life/a", server=server)
    # On SQLite a consistent read is the same read.
    assert as_json("get", "life/a", "--consistent", server=server) == got
    trace = local_trace(spec, 3)
    assert got["lr"] == trace["lr"][1] and got["momentum"] == trace["momentum"][1]
    names = [s["name"] for s in as_json("list", server=server)["sessions"]]
    assert "life/a" in names
    assert as_json("delete", "life/a", server=server) == {"deleted": "life/a"}


def test_human_readable_tables(server, spec):
    ok("create", "tab/a", f"--spec={spec}", server=server)
    table = ok("list", server=server).splitlines()
    assert table[0].split()[:4] == ["NAME", "TYPE", "EPOCH", "LR"]
    assert any(line.split()[:3] == ["tab/a", "CosineAnnealingLR", "0"] for line in table[1:])
    got = ok("get", "tab/a", server=server)
    assert "last_epoch" in got and "CosineAnnealingLR" in got
    lr = ok("lr", "tab/a", "--window=3", server=server).splitlines()
    assert lr[0].split() == ["EPOCH", "LR", "MOMENTUM"] and len(lr) == 4
    ok("delete", "tab/a", server=server)


def test_lr_ahead_and_window(server, spec):
    ok("create", "lr/a", f"--spec={spec}", server=server)
    trace = local_trace(spec, 12)
    now = as_json("lr", "lr/a", server=server)
    assert now["epoch"] == 0 and now["lr"] == trace["lr"][0]
    ahead = as_json("lr", "lr/a", "--ahead=5", server=server)
    assert ahead["epoch"] == 5 and ahead["last_epoch"] == 0 and ahead["lr"] == trace["lr"][5]
    window = as_json("lr", "lr/a", "--window=10", server=server)["window"]
    assert [w["epoch"] for w in window] == list(range(10))
    assert [w["lr"] for w in window] == trace["lr"][:10]
    assert [w["momentum"] for w in window] == trace["momentum"][:10]
    assert lrsched("lr", "lr/a", "--window=-1", server=server).returncode == 2


def test_exit_codes(server, spec, tmp_path):
    assert lrsched("get", "missing/x", server=server).returncode == 4
    assert lrsched("lr", "missing/x", server=server).returncode == 4
    assert lrsched("export", "missing/x", server=server).returncode == 4
    refused = lrsched("create", "bad name!", f"--spec={spec}", server=server)
    assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr
    plateau = tmp_path / "plateau.json"
    plateau.write_text(json.dumps(PLATEAU))
    ok("create", "codes/p", f"--spec={plateau}", server=server)
    ahead = lrsched("lr", "codes/p", "--ahead=2", server=server)
    assert ahead.returncode == 1 and "FAILED_PRECONDITION" in ahead.stderr
    assert lrsched("get", server=server).returncode == 2
    assert lrsched("import", "x", server=server).returncode == 2  # no source
    assert lrsched("plot", str(spec)).returncode == 2  # no --out
    # Nobody listens on port 1: unreachable.
    down = lrsched("get", "x", "--server=127.0.0.1:1", "--timeout=2s")
    assert down.returncode == 3 and "UNAVAILABLE" in down.stderr
    assert lrsched("health", "--server=127.0.0.1:1", "--timeout=2s").returncode == 3


def test_health(server):
    out = lrsched("health", server=server)
    assert out.returncode == 0 and out.stdout.strip() == "SERVING"
    assert as_json("health", server=server) == {"status": "SERVING"}


def test_export_import_round_trips(server, spec, tmp_path):
    ok("create", "ex/a", f"--spec={spec}", "--labels=k=v", server=server)
    for e in range(3):
        ok("step", "ex/a", f"--if-epoch={e}", server=server)
    state = tmp_path / "state.json"
    state.write_text(ok("export", "ex/a", server=server))
    assert json.loads(state.read_text())["format"] == "lrsched.schedule"
    copy = as_json("import", "ex/b", f"--state={state}", server=server)
    original = as_json("get", "ex/a", server=server)
    assert copy["last_epoch"] == 3 and copy["lr"] == original["lr"]
    assert copy["labels"] == {"k": "v"}
    again = lrsched("import", "ex/b", f"--state={state}", server=server)
    assert again.returncode == 1 and "ALREADY_EXISTS" in again.stderr
    assert as_json("import", "ex/b", f"--state={state}", "--replace", server=server)[
        "last_epoch"] == 3
    torch_state = tmp_path / "torch.json"
    torch_state.write_text(ok("export", "ex/a", "--torch", server=server))
    t = json.loads(torch_state.read_text())
    assert t["state_dict"]["last_epoch"] == 3 and t["param_groups"][0]["lr"] == original["lr"][0]
    from_torch = as_json("import", "ex/t", f"--torch-spec={spec}", f"--torch-state={torch_state}",
                         server=server)
    assert from_torch["last_epoch"] == 3 and from_torch["lr"] == original["lr"]
    # A bare scheduler.state_dict() works too.
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(t["state_dict"]))
    assert as_json("import", "ex/u", f"--torch-spec={spec}", f"--torch-state={bare}",
                   server=server)["last_epoch"] == 3
    nostate = lrsched("import", "ex/v", f"--state={tmp_path / 'none.json'}", server=server)
    assert nostate.returncode == 2


def watch(server, name, *flags):
    return subprocess.Popen([cli_bin(), "watch", name, f"--server={server.addr}", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_lines(proc, n, timeout=20):
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < n and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    return lines


def test_watch_until_sigint(server, spec):
    ok("create", "watch/a", f"--spec={spec}", server=server)
    proc = watch(server, "watch/a", "--json")
    try:
        first = read_lines(proc, 1)
        assert json.loads(first[0])["last_epoch"] == 0
        for e in range(2):
            ok("step", "watch/a", f"--if-epoch={e}", server=server)
        more = [json.loads(line) for line in read_lines(proc, 2)]
        assert [m["last_epoch"] for m in more] == [1, 2]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        proc.kill()


def test_watch_ends_when_deleted(server, spec):
    ok("create", "watch/b", f"--spec={spec}", server=server)
    proc = watch(server, "watch/b")
    try:
        assert read_lines(proc, 1)[0].startswith("epoch=0 lr=")
        ok("delete", "watch/b", server=server)
        assert proc.wait(20) == 0
        assert "deleted" in proc.stderr.read()
    finally:
        proc.kill()
    assert lrsched("watch", "watch/never", server=server).returncode == 4


def test_remote_simulate_still_matches_local(server, spec):
    assert ok("simulate", str(spec), server=server) == ok("simulate", str(spec))


def parse_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    curves = [e for e in root.iter() if e.tag in (SVG + "polyline", SVG + "path")
              and e.get("class") == "curve"]
    axes = [e for e in root.iter(SVG + "line") if e.get("class") == "axis"]
    legend = [e.text for e in root.iter(SVG + "text") if e.get("class") == "legend"]
    ticks = [e.text for e in root.iter(SVG + "text") if e.get("class") == "tick"]
    return curves, axes, legend, ticks


def test_plot_local_specs(tmp_path):
    files = [EXAMPLES / f"CyclicLR-{m}.json" for m in ("triangular", "triangular2", "exp_range")]
    out = tmp_path / "cyclic.svg"
    ok("plot", *map(str, files), f"--out={out}", "--title=CyclicLR")
    curves, axes, legend, ticks = parse_svg(out)
    assert len(curves) == 3 and len(axes) >= 2
    assert legend == ["CyclicLR triangular", "CyclicLR triangular2",
                      "CyclicLR exp_range (gamma=0.99)"]
    assert "0.0" in ticks and "1.0" in ticks and "200" in ticks
    # A curve's points follow the trace: 200 points.
    assert len(curves[0].get("points").split()) == 200


def test_plot_momentum_panel(tmp_path):
    one_cycle = tmp_path / "onecycle.json"
    one_cycle.write_text(json.dumps({
        "optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
        "scheduler": {"type": "OneCycleLR", "max_lr": 1.0, "total_steps": 50}, "steps": 50}))
    out = tmp_path / "oc.svg"
    ok("plot", str(one_cycle), f"--out={out}")
    curves, axes, legend, _ = parse_svg(out)
    assert len(curves) == 2 and len(axes) == 4 and legend == ["onecycle"]


def test_plot_live_session(server, spec, tmp_path):
    ok("create", "plot/a", f"--spec={spec}", server=server)
    ok("step", "plot/a", "--if-epoch=0", server=server)
    out = tmp_path / "live.svg"
    ok("plot", str(EXAMPLES / "StepLR.json"), "--session=plot/a", "--steps=30", f"--out={out}",
       server=server)
    curves, axes, legend, _ = parse_svg(out)
    assert len(curves) == 2 and legend == ["StepLR (step_size=50, gamma=0.5)", "session plot/a"]
    # The session's curve is its lookahead window: 30 epochs from its current one.
    assert len(curves[1].get("points").split()) == 30
    missing = lrsched("plot", "--session=plot/none", f"--out={out}", server=server)
    assert missing.returncode == 4


# --- Megatron: weight_decay served, step --increment (issue #17) ---------------------------

MEGATRON = {"optimizer": {"type": "AdamW",
                          "param_groups": [{"lr": 0.0, "betas": [0.9, 0.95], "weight_decay": 0.1},
                                           {"lr": 0.0, "betas": [0.9, 0.95], "wd_mult": 0.5}]},
            "scheduler": {"type": "megatron.OptimizerParamScheduler", "init_lr": 0.0,
                          "max_lr": 0.001, "min_lr": 1e-05, "lr_warmup_steps": 40,
                          "lr_decay_steps": 400, "lr_decay_style": "WSD", "wsd_decay_steps": 80,
                          "lr_wsd_decay_style": "cosine", "start_wd": 0.0, "end_wd": 0.1,
                          "wd_incr_steps": 400, "wd_incr_style": "cosine", "increment": 8},
            "steps": 60}


@pytest.fixture
def mg_spec(tmp_path):
    p = tmp_path / "megatron.json"
    p.write_text(json.dumps(MEGATRON))
    return p


def test_megatron_session_serves_weight_decay_and_takes_increments(server, mg_spec):
    trace = local_trace(mg_spec, 60)  # the spec's increment (8) per step
    assert len(trace["weight_decay"]) == 60 and "weight_decay" not in local_trace(
        EXAMPLES / "StepLR.json", 3)
    got = as_json("create", "mg/a", f"--spec={mg_spec}", server=server)
    assert got["weight_decay"] == trace["weight_decay"][0] and got["last_epoch"] == 0
    # --increment=16 is two of the spec's steps; without it, the spec's 8.
    got = as_json("step", "mg/a", "--increment=16", "--if-epoch=0", server=server)
    assert got["last_epoch"] == 16 and got["lr"] == trace["lr"][2]
    assert got["weight_decay"] == trace["weight_decay"][2]
    got = as_json("step", "mg/a", server=server)
    assert got["last_epoch"] == 24 and got["weight_decay"] == trace["weight_decay"][3]
    # Lookahead: steps of the spec's increment; a window's epochs are num_steps.
    ahead = as_json("lr", "mg/a", "--ahead=3", server=server)
    assert ahead["epoch"] == 48 and ahead["weight_decay"] == trace["weight_decay"][6]
    window = as_json("lr", "mg/a", "--window=5", server=server)["window"]
    assert [w["epoch"] for w in window] == [24, 32, 40, 48, 56]
    assert [w["weight_decay"] for w in window] == trace["weight_decay"][3:8]
    table = ok("lr", "mg/a", "--window=2", server=server).splitlines()
    assert table[0].split() == ["EPOCH", "LR", "MOMENTUM", "WEIGHT_DECAY"] and len(table) == 3
    assert "weight_decay" in ok("get", "mg/a", server=server)
    bad = lrsched("step", "mg/a", "--increment=0", server=server)
    assert bad.returncode == 1 and "increment" in bad.stderr
    # torch's types take no increment.
    ok("create", "mg/torch", f"--spec={EXAMPLES / 'StepLR.json'}", server=server)
    bad = lrsched("step", "mg/torch", "--increment=2", server=server)
    assert bad.returncode == 1 and "increment" in bad.stderr
    assert "weight_decay" not in as_json("get", "mg/torch", server=server)


def test_plot_live_megatron_session_counts_its_num_steps(server, mg_spec, tmp_path):
    ok("create", "mg/plot", f"--spec={mg_spec}", server=server)
    out = tmp_path / "live-mg.svg"
    ok("plot", "--session=mg/plot", "--steps=50", f"--out={out}", server=server)
    curves, _, _, ticks = parse_svg(out)
    # x is the window's num_steps, 0 .. 392 in steps of the spec's increment (8), not 0 .. 49.
    assert len(curves) == 4 and "300" in ticks


def test_plot_weight_decay_panel(tmp_path, mg_spec):
    out = tmp_path / "mg.svg"
    ok("plot", str(mg_spec), f"--out={out}")
    curves, axes, legend, _ = parse_svg(out)
    # Two groups x (lr, weight decay); beta1 stays 0.9, so no momentum panel.
    assert len(curves) == 4 and len(axes) == 4 and legend == ["megatron (group 0)",
                                                              "megatron (group 1)"]
    assert "weight decay" in out.read_text()
