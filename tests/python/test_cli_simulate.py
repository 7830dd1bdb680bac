"""`lrsched simulate` (local): the CLI's output format, exit codes and parity with torch.

Run by scripts/test.sh with LRSCHED_BIN_DIR pointing at the build directory.
"""
import json
import os
import pathlib
import subprocess

import pytest

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
pytestmark = pytest.mark.skipif(not BIN_DIR, reason="LRSCHED_BIN_DIR is not set (run scripts/test.sh)")


def cli():
    return os.path.join(BIN_DIR, "client", "lrsched")


def simulate(stdin_text, *args, timeout=60):
    return subprocess.run([cli(), "simulate", "-", *args], input=stdin_text, capture_output=True,
                          text=True, timeout=timeout)


def golden_lines():
    for name in ("torch-1.13-traces.jsonl", "lrsched-extra-traces.jsonl", "beyond-traces.jsonl"):
        for i, line in enumerate((DATA / name).read_text().splitlines()):
            if line.strip():
                yield pytest.param(line, id=f"{name}:{i + 1}:{json.loads(line)['name']}")


@pytest.mark.parametrize("line", list(golden_lines()))
def test_golden_line(line):
    case = json.loads(line)
    want = case["expected"]
    out = simulate(line)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    if case["name"] == "errors/LinearLR-start-factor":
        # Refused at construction, as torch >= 2.0 does; torch 1.13 divides by zero at step 0.
        assert got["error_at_step"] == -1 and "start_factor" in got["error"]
        return
    assert got.get("error_at_step") == want.get("error_at_step")
    assert got["lr"] == want.get("lr", [])  # Python float equality: bit-exact for these values
    if "momentum" in want:
        assert got["momentum"] == want["momentum"]
    # weight_decay rows exactly where the reference drives it (Megatron), never for torch's types.
    assert ("weight_decay" in got) == ("weight_decay" in want)
    if "weight_decay" in want:
        assert got["weight_decay"] == want["weight_decay"]
    if "state_dict" in want:
        assert got["state_dict"] == want["state_dict"]


def test_floats_round_trip_and_steps_override():
    spec = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
            "scheduler": {"type": "CosineAnnealingLR", "T_max": 7}, "steps": 3}
    out = simulate(json.dumps(spec), "--steps=20")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert len(got["lr"]) == 20
    assert got["momentum"] == [[0.0]] * 20
    for row in got["lr"]:
        assert float(repr(row[0])) == row[0]
    text = out.stdout
    # Shortest round-trip form, like Python's repr: parse and print give the same text.
    assert json.dumps(json.loads(text), separators=(",", ":")) == text.strip()


def test_step_refusal_is_a_result_not_a_failure():
    spec = {"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.01}]},
            "scheduler": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 4}, "steps": 8}
    out = simulate(json.dumps(spec))
    assert out.returncode == 0
    got = json.loads(out.stdout)
    assert got["error_at_step"] == 4 and "total steps" in got["error"]
    assert len(got["lr"]) == 5 and "state_dict" not in got


def test_refused_configuration():
    spec = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
            "scheduler": {"type": "StepLR", "step_size": 0}, "steps": 3}
    got = json.loads(simulate(json.dumps(spec)).stdout)
    assert got["error_at_step"] == -1 and "scheduler.step_size" in got["error"]


@pytest.mark.parametrize("text", ["", "not json", "{\"optimizer\": ", "[1, 2]", "{}",
                                  json.dumps({"optimizer": {}, "scheduler": {}})])
def test_unreadable_input_exits_2(text):
    out = simulate(text)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith("lrsched: ")


def test_missing_file_exits_2(tmp_path):
    out = subprocess.run([cli(), "simulate", str(tmp_path / "nope.json")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2 and "nope.json" in out.stderr


def test_file_argument(tmp_path):
    line = (DATA / "torch-1.13-traces.jsonl").read_text().splitlines()[0]
    f = tmp_path / "spec.json"
    f.write_text(line)
    out = subprocess.run([cli(), "simulate", str(f)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["lr"] == json.loads(line)["expected"]["lr"]


TWO_GROUPS = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}, {"lr": 0.01}]},
              "scheduler": {"type": "StepLR", "step_size": 10}}


@pytest.mark.parametrize("steps, args, groups", [
    (10**12, [], 1),                      # the file's "steps": once std::bad_alloc (exit 134)
    (3, ["--steps=1000001"], 1),          # --steps, one past the limit
    (3, ["--steps=9223372036854775807"], 1),
    (500001, [], 2),                      # steps x param groups counts
])
def test_past_the_servers_limit_is_refused_before_any_work(steps, args, groups):
    spec = dict(COSINE_ONE if groups == 1 else TWO_GROUPS, steps=steps)
    out = simulate(json.dumps(spec), *args, timeout=20)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.startswith("lrsched: steps: ")
    assert f"x {groups} param group" in out.stderr and "limit of 1000000 values" in out.stderr


def test_the_limit_itself_is_allowed():
    out = simulate(json.dumps(dict(TWO_GROUPS, steps=500000)), timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["lr"]) == 500000


def test_remote_simulate_refuses_past_the_limit_before_connecting():
    # Nothing listens on port 1: exit 2 (not 3, unreachable) shows nothing was tried remotely.
    out = simulate(json.dumps(dict(COSINE_ONE, steps=10**12)), "--server=127.0.0.1:1",
                   "--timeout=2s", timeout=20)
    assert out.returncode == 2, out.stderr
    assert "limit of 1000000 values" in out.stderr


COSINE_ONE = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
              "scheduler": {"type": "CosineAnnealingLR", "T_max": 10}}


def test_plot_refuses_past_the_limit(tmp_path):
    f = tmp_path / "big.json"
    f.write_text(json.dumps(dict(COSINE_ONE, steps=10**12)))
    out = subprocess.run([cli(), "plot", str(f), f"--out={tmp_path / 'p.svg'}"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 2 and "limit of 1000000 values" in out.stderr
    assert not (tmp_path / "p.svg").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_trace_that_cannot_be_written_is_a_failure():
    # Once exit 0 with the trace lost; the output is streamed now, so a write error can surface
    # mid-trace too.
    with open("/dev/full", "w") as full:
        out = subprocess.run([cli(), "simulate", "-", "--steps=100000"],
                             input=json.dumps(COSINE_ONE), stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert out.returncode == 1
    assert "writing the trace failed" in out.stderr
