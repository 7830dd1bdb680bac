#!/usr/bin/python3
"""Whole-process `lrsched simulate` against torch 1.13 tracing the same spec, side by side.

    /usr/bin/python3 bench/simulate_vs_torch.py [BUILD_DIR] [STEPS] [RUNS] [BEFORE_BIN]

BUILD_DIR (default build) holds client/lrsched; STEPS (default 300000) steps of
CosineAnnealingLR (SGD, lr 0.1, T_max = STEPS); RUNS (default 5) alternating runs of each.
The torch process is shared/golden/torch_trace.py itself (the script that wrote the golden
traces; ../shared/golden beside the repository, or $GOLDEN_DIR), run by /usr/bin/python3 with
Debian's python3-torch: it imports torch, traces each group's lr and momentum before every
step(), and writes the trace as JSON, as `lrsched simulate SPEC > FILE` does. Both write to a
file in a temporary directory; the script checks that both wrote the same lr and momentum rows.
BEFORE_BIN (optional) is another lrsched binary (e.g. one built before a change) timed in the
same runs. Prints, as a Markdown table, the median and the best wall time of each process, the
median CPU time (user + sys: what a loaded machine inflates least) and the ratios of the
medians.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.environ.get("GOLDEN_DIR", os.path.join(HERE, "..", "..", "shared", "golden"))


def cpu_of_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, stdout_path):
    """(wall seconds, CPU seconds: user + sys) of one run of `cmd`."""
    with open(stdout_path, "wb") as out:
        c0 = cpu_of_children()
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, check=True)
        return time.perf_counter() - t0, cpu_of_children() - c0


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300000
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    before = sys.argv[4] if len(sys.argv) > 4 else None
    lrsched = os.path.join(build, "client", "lrsched")
    torch_trace = os.path.join(GOLDEN, "torch_trace.py")
    case = {"name": "bench/CosineAnnealingLR",
            "optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
            "scheduler": {"type": "CosineAnnealingLR", "T_max": steps}, "steps": steps}
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump(case, f)
        cases = os.path.join(tmp, "cases.json")
        with open(cases, "w") as f:
            json.dump([case], f)
        torch_out = os.path.join(tmp, "torch.jsonl")
        procs = [("torch 1.13 (torch_trace.py)",
                  ["/usr/bin/python3", torch_trace, cases, torch_out], os.devnull),
                 ("lrsched simulate", [lrsched, "simulate", spec], os.path.join(tmp, "new.json"))]
        if before:
            procs.append(("lrsched simulate (before)", [before, "simulate", spec],
                          os.path.join(tmp, "before.json")))
        times = {name: [] for name, _, _ in procs}
        cpus = {name: [] for name, _, _ in procs}
        for _ in range(runs):  # alternate, so a change in the machine's load hits every process
            for name, cmd, out in procs:
                wall, cpu = timed(cmd, out)
                times[name].append(wall)
                cpus[name].append(cpu)

        want = json.loads(open(torch_out).read())["expected"]
        for name, _, out in procs[1:]:
            got = json.load(open(out))
            if got["lr"] != want["lr"] or got.get("momentum") != want.get("momentum"):
                sys.exit(f"{name}: the trace differs from torch's")
        size = os.path.getsize(procs[1][2])

    torch_wall = statistics.median(times[procs[0][0]])
    torch_cpu = statistics.median(cpus[procs[0][0]])
    print(f"{steps} steps of CosineAnnealingLR, {runs} runs each, nproc {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}, lrsched output {size / 1e6:.1f} MB; "
          "the traces agree")
    print()
    print("| process | wall, median | wall, best | CPU, median | torch / this: wall | CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _, _ in procs:
        wall = statistics.median(times[name])
        cpu = statistics.median(cpus[name])
        print(f"| {name} | {wall * 1e3:,.0f} ms | {min(times[name]) * 1e3:,.0f} ms | "
              f"{cpu * 1e3:,.0f} ms | {torch_wall / wall:.1f}x | {torch_cpu / cpu:.1f}x |")


if __name__ == "__main__":
    main()
