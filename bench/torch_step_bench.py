#!/usr/bin/python3
"""torch's own scheduler.step(), and what RemoteLRScheduler.step() costs against it. Needs
Debian's python3-torch.

    /usr/bin/python3 bench/torch_step_bench.py [bench/step_configs.json]

torch's step() on the configs of step_configs.json, for comparison with engine_bench (same
machine, same session): one line per config, nanoseconds per step() (best of 5 runs of 20000
steps), and a 1,000,000-step CosineAnnealingLR loop in milliseconds.

    /usr/bin/python3 bench/torch_step_bench.py remote BUILD_DIR [STEPS]
    /usr/bin/python3 bench/torch_step_bench.py ddp BUILD_DIR [ITERS] [ROUNDS]

(bench_remote.py, next to this file.) remote: starts BUILD_DIR/server/lrsched-server with the
default --sqlite_synchronous=full on a fresh data dir on 127.0.0.1, and times sched.step() in a
one-process loop of STEPS (1000) steps of CosineAnnealingLR: torch's own scheduler, the remote
one pipelined (max_pending 1, the default, and 64) and synchronous (pipeline=False); once with
nothing else in the loop and once after a training iteration of a small model. ddp: a 4-rank
gloo DDP job (tests/python/ddp_worker.py) on the same kind of server, mean seconds per
iteration with torch's scheduler, the remote one pipelined and synchronous.
"""
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "golden"))
warnings.filterwarnings("ignore")
import torch_trace  # noqa: E402  (make_optimizer / make_scheduler, as the golden traces use)


def ns_per_step(cfg, n=20000, repeats=5):
    best = float("inf")
    metric = cfg.get("metric")
    for _ in range(repeats):
        opt = torch_trace.make_optimizer(cfg["optimizer"])
        sch = torch_trace.make_scheduler(opt, cfg["scheduler"])
        t0 = time.perf_counter_ns()
        if metric is None:
            for _ in range(n):
                sch.step()
        else:
            for _ in range(n):
                sch.step(metric)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("remote", "ddp"):
        import bench_remote
        bench_remote.main(sys.argv[1], sys.argv[2:])
        return
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "step_configs.json")
    configs = json.load(open(path))
    import torch
    print(f"torch {torch.__version__}")
    for cfg in configs:
        print(f"torch_step/{cfg['name']:<28} {ns_per_step(cfg):10.0f} ns/step")
    cos = [c for c in configs if c["name"] == "CosineAnnealingLR"][0]
    opt = torch_trace.make_optimizer(cos["optimizer"])
    sch = torch_trace.make_scheduler(opt, cos["scheduler"])
    lrs = []
    t0 = time.perf_counter()
    for _ in range(1_000_000):
        lrs.append(opt.param_groups[0]["lr"])
        sch.step()
    print(f"torch_simulate_1M/CosineAnnealingLR  {(time.perf_counter() - t0) * 1e3:10.0f} ms")


if __name__ == "__main__":
    main()
