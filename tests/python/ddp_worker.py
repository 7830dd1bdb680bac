"""One rank of a small torch DDP job (gloo, 127.0.0.1) whose schedules live in lrsched, for
test_python_ddp.py and bench/torch_step_bench.py. Not a test module.

    /usr/bin/python3 ddp_worker.py RANK WORLD RDZV_PORT SERVER JOB ITERS [options as JSON]

Options: "schedules": list of torch scheduler dicts (default: CosineAnnealingLR and OneCycleLR),
each driving its own model and optimizer; "sleep": seconds to wait per iteration (so a test can
act mid-run); "retry_timeout"; "remote": false to use torch's own schedulers only (the
benchmark's local run); "pipeline": false for synchronous steps; "max_pending"; "width": a
two-layer model of that width instead of Linear(8, 1); "compare": false to skip the comparison
with torch.

Each iteration: forward, backward (DDP allreduce), optimizer.step(), then sched.step() of every
schedule, and (unless remote is false) the param groups are compared bit for bit with a torch
scheduler of the same spec stepped alongside on an optimizer of its own. Prints one JSON line per
iteration {"i": ..., "lr": [...]} after the comparison, and a last line {"done": ...} with the
mean seconds per iteration and inside sched.step() (mean per iteration, median call), or
{"error": class, "message": ...} (exit status 3) when lrsched raised, {"error": "PeerExited", ...}
(exit status 4) when a collective failed because another rank had exited.
"""
import datetime
import json
import sys
import time

import torch
import torch.distributed as dist

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import lrsched  # noqa: E402
from lrsched.torch import RemoteLRScheduler  # noqa: E402

DEFAULT_SCHEDULES = [
    {"type": "CosineAnnealingLR", "T_max": 7, "eta_min": 0.001},
    {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 1000},
]


def torch_scheduler(opt, spec):
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    return getattr(torch.optim.lr_scheduler, spec["type"])(opt, **kwargs)


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    rank, world, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    server, job, iters = sys.argv[4], sys.argv[5], int(sys.argv[6])
    opts = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
    schedules = opts.get("schedules", DEFAULT_SCHEDULES)
    remote = opts.get("remote", True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    models, optims, scheds, refs = [], [], [], []
    for k, spec in enumerate(schedules):
        width = opts.get("width")
        net = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(),
                                  torch.nn.Linear(width, 1)) if width else torch.nn.Linear(8, 1)
        model = torch.nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        models.append(model)
        optims.append(opt)
        if remote:
            scheds.append(RemoteLRScheduler(
                opt, spec, name=f"{job}/{k}", server=server,
                retry_timeout=opts.get("retry_timeout", 10.0),
                pipeline=opts.get("pipeline", True), max_pending=opts.get("max_pending", 1)))
            # torch's own scheduler on an optimizer of its own: the reference.
            ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
            refs.append((ref_opt, torch_scheduler(ref_opt, spec)))
        else:
            scheds.append(torch_scheduler(opt, spec))
    compare = remote and opts.get("compare", True)
    x = torch.randn(64, opts["width"]) if opts.get("width") else torch.randn(16, 8)
    y = torch.randn(x.shape[0], 1)
    dist.barrier()  # every rank set up: time the iterations alone
    start = time.perf_counter()
    in_step = 0.0  # seconds inside sched.step()
    step_times = []
    try:
        for i in range(1, iters + 1):
            for model, opt in zip(models, optims):
                opt.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                opt.step()
            t0 = time.perf_counter()
            for s in scheds:
                s.step()
            in_step += time.perf_counter() - t0
            step_times.append(time.perf_counter() - t0)
            if compare:
                lrs = []
                for opt, (ref_opt, ref) in zip(optims, refs):
                    ref.step()
                    got = [(g["lr"], g["momentum"]) for g in opt.param_groups]
                    want = [(g["lr"], g["momentum"]) for g in ref_opt.param_groups]
                    if got != want:  # float ==: bit for bit
                        raise AssertionError(f"rank {rank} iteration {i}: {got} != torch {want}")
                    lrs.append(got[0][0])
                emit({"i": i, "lr": lrs})
            if opts.get("sleep"):
                time.sleep(opts["sleep"])
        per_iter = (time.perf_counter() - start) / iters
        for s in scheds:
            if remote:
                s.close()
        emit({"done": iters, "per_iter": per_iter, "step_per_iter": in_step / iters,
              "step_median": sorted(step_times)[len(step_times) // 2],
              "epochs": [s.last_epoch for s in scheds]})
    except lrsched.LrschedError as e:
        emit({"error": type(e).__name__, "message": str(e)})
        sys.exit(3)
    except RuntimeError as e:
        # A collective (DDP's allreduce) failed because a peer rank exited: with pipelined steps
        # a rank may find its Step undeliverable while another is already in the next backward.
        emit({"error": "PeerExited", "message": str(e)})
        sys.exit(4)


if __name__ == "__main__":
    main()
