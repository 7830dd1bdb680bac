"""torch_step_bench.py's `remote` and `ddp` modes: what RemoteLRScheduler.step() costs against
torch's own scheduler, on a real lrsched-server with its default durability
(--sqlite_synchronous=full). See torch_step_bench.py for the usage; not meant to be run alone.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

COSINE = {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": 0.001}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """lrsched-server on 127.0.0.1, default sync (FULL), data in a temporary directory."""

    def __init__(self, build_dir):
        self.tmp = tempfile.TemporaryDirectory(prefix="torch_step_bench.")
        self.address = f"127.0.0.1:{free_port()}"
        self.log = open(os.path.join(self.tmp.name, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(build_dir, "server", "lrsched-server"), f"--listen={self.address}",
             f"--data_dir={os.path.join(self.tmp.name, 'data')}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        import lrsched
        with lrsched.Client(self.address, retry_timeout=20.0) as c:
            list(c.list_sessions())  # retried until it answers

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
        self.tmp.cleanup()


def _training_iteration():
    """A small model's forward, backward and optimizer step (what a step() follows)."""
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(128, 128), torch.randn(128, 1)

    def run():
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return run


def _loop(make_sched, steps, work):
    """Nanoseconds of each sched.step() in a loop of `steps` (after work() each time), the
    loop's nanoseconds per iteration, and close()'s."""
    import torch
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    sched = make_sched(opt)
    times = []
    start = time.perf_counter_ns()
    for _ in range(steps):
        if work:
            work()
        t0 = time.perf_counter_ns()
        sched.step()
        times.append(time.perf_counter_ns() - t0)
    per_iter = (time.perf_counter_ns() - start) / steps
    close = getattr(sched, "close", None)
    t0 = time.perf_counter_ns()
    if close:
        close()  # waits for pipelined steps still in flight
    return times, per_iter, time.perf_counter_ns() - t0


def remote(build_dir, steps=1000):
    import torch
    from lrsched.torch import RemoteLRScheduler
    server = Server(build_dir)
    names = iter(range(10 ** 6))
    try:
        def pipelined(**kw):
            return lambda o: RemoteLRScheduler(o, COSINE, name=f"bench/{next(names)}",
                                               server=server.address, **kw)
        arms = [
            ("torch (local)", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
                o, T_max=COSINE["T_max"], eta_min=COSINE["eta_min"])),
            ("remote, pipelined (max_pending=1)", pipelined()),
            ("remote, pipelined (max_pending=64)", pipelined(max_pending=64)),
            ("remote, synchronous", pipelined(pipeline=False)),
        ]
        work = _training_iteration()
        t0 = time.perf_counter()
        for _ in range(100):
            work()
        print(f"torch {torch.__version__}; training iteration (MLP 128-128-1, batch 128): "
              f"{(time.perf_counter() - t0) * 10:.2f} ms")
        print("step(): median, p90 and mean of a sched.step() call; iteration: the loop's time per "
              "iteration (work and step())")
        print(f"{'loop':<9} {'scheduler':<35} {'median':>10} {'p90':>10} {'mean':>10} "
              f"{'iteration':>11} {'close()':>9}")
        for loop, w in (("tight", None), ("training", work)):
            for label, make in arms:
                times, per_iter, close_ns = _loop(make, steps, w)
                q = statistics.quantiles(times, n=10)
                print(f"{loop:<9} {label:<35} {statistics.median(times) / 1e3:8.1f} us "
                      f"{q[8] / 1e3:7.1f} us {statistics.mean(times) / 1e3:7.1f} us "
                      f"{per_iter / 1e3:8.1f} us {close_ns / 1e6:6.1f} ms", flush=True)
    finally:
        server.stop()


def ddp(build_dir, iters=300, rounds=2, world=4, width=64):
    worker = os.path.join(ROOT, "tests", "python", "ddp_worker.py")
    server = Server(build_dir)
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    arms = [("torch (local)", {"remote": False}), ("remote, pipelined", {}),
            ("remote, synchronous", {"pipeline": False})]
    results = {label: [] for label, _ in arms}
    in_step = {label: [] for label, _ in arms}
    medians = {label: [] for label, _ in arms}
    try:
        for r in range(rounds):
            for arm, (label, opts) in enumerate(arms):
                opts = dict(opts, schedules=[COSINE], width=width, compare=False)
                port = free_port()
                procs = [subprocess.Popen(
                    [sys.executable, worker, str(rank), str(world), str(port), server.address,
                     f"ddp/{r}/{arm}", str(iters),
                     json.dumps(opts)], stdout=subprocess.PIPE, text=True, env=env)
                    for rank in range(world)]
                outs = [p.communicate(timeout=600)[0] for p in procs]
                done = [json.loads(o.strip().splitlines()[-1]) for o in outs]
                per_iter = max(d["per_iter"] for d in done)
                step = statistics.mean(d["step_per_iter"] for d in done)
                results[label].append(per_iter)
                in_step[label].append(step)
                medians[label].append(statistics.median(d["step_median"] for d in done))
                print(f"round {r}: {label:<22} {per_iter * 1e3:7.2f} ms/iteration, "
                      f"{step * 1e6:8.1f} us in step()", flush=True)
    finally:
        server.stop()
    local = statistics.median(results["torch (local)"])
    print(f"{world} ranks, MLP {width}-{width}-1 (gloo, 127.0.0.1), {iters} iterations, "
          f"median of {rounds} rounds:")
    print("  (wall time per iteration, slowest rank; time inside sched.step() per iteration, mean")
    print("  over ranks, as a share of the local iteration; the median step() call)")
    for label, _ in arms:
        m = statistics.median(results[label])
        st = statistics.median(in_step[label])
        print(f"  {label:<22} {m * 1e3:7.2f} ms/iteration  {100 * (m - local) / local:+6.1f}%"
              f"   step() {st * 1e6:8.1f} us  {100 * st / local:5.2f}%  median step() "
              f"{statistics.median(medians[label]) * 1e6:7.1f} us")


def main(mode, args):
    if not args:
        sys.exit(f"usage: torch_step_bench.py {mode} BUILD_DIR [N]")
    if mode == "remote":
        remote(args[0], *(int(a) for a in args[1:2]))
    else:
        ddp(args[0], *(int(a) for a in args[1:3]))
