"""Heavy calls against a real lrsched-server process: bounded work, a pool of their own.

With 130 maximal heavy calls in flight (one in ten GetLR lookaheads of a ChainedScheduler of 60
MultiplicativeLR with 1000-character lambdas, as far ahead as --max_call_cost admits; the rest
Simulate of 1000 steps x 1000 param groups, 26 KB requests and 16 MB replies), a Create, a Step
and a Delete each answer in under 200 ms, and the server's resident memory stays under 512 MB
(read from /proc/<pid>/status), and under half that once the calls are over. Every heavy call
is answered. The lookahead's bound comes from
the server's own refusal, which must name the field and the numbers.

--max_call_cost is 1e8 here (not the default 1e9) so that the 130 calls take seconds, not
minutes, on a small machine; each call is still the largest the server admits.

Run by scripts/test.sh as `/usr/bin/python3 -m pytest tests/python` with LRSCHED_BIN_DIR set to
the build directory. Every wait is bounded; the file runs in 10-30 seconds.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

if not os.environ.get("LRSCHED_BIN_DIR"):
    pytest.skip("LRSCHED_BIN_DIR is not set (the CMake build directory; run scripts/test.sh)",
                allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import grpc  # noqa: E402
from lrsched._proto import pb, pb_grpc  # noqa: E402
from test_server_process import Server as ProcessServer  # noqa: E402

# Set by scripts/test.sh for the ASan + UBSan build's run.
SANITIZED = os.environ.get("LRSCHED_SANITIZED") == "1"
MAX_CALL_COST = 100_000_000
HEAVY_CALLS = 130
LIGHT_LIMIT = 0.2  # seconds, each of Create, Step, Delete
# The server's peak RSS while the heavy calls run. Not checked under ASan (scripts/test.sh drops
# the RSS bounds there): its quarantine and shadow memory are the sanitizer's, and put the peak
# at the bound itself (512.5 MB in CI's sanitized run of 2026-12-04).
RSS_LIMIT = 512 << 20
# Seconds for every heavy call to be answered: a bound against a hang, not a speed target. Under
# ASan the slowest call takes ~35 s alone on 2 cores (2026-12-04), and went past 45 s with the
# machine shared.
HEAVY_TIMEOUT = 150 if SANITIZED else 45

LAMBDA = "0.99999+0*(epoch" + "+epoch%7" * 122 + ")"  # ~1000 characters
COSTLY = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
          "scheduler": {"type": "ChainedScheduler",
                        "schedulers": [{"type": "MultiplicativeLR", "lr_lambda": LAMBDA}] * 60}}
WIDE = {"optimizer": {"type": "SGD",
                      "param_groups": [{"lr": 0.1, "momentum": 0.9}] * 1000},
        "scheduler": {"type": "CosineAnnealingLR", "T_max": 100}}
COSINE = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
          "scheduler": {"type": "CosineAnnealingLR", "T_max": 100}}


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


class Server(ProcessServer):
    """test_server_process's Server (health-checked start), started at once on a fresh data
    directory with `flags`, its address as .address."""

    def __init__(self, tmp_path, *flags):
        super().__init__(tmp_path / "data", "--sqlite_synchronous=normal", "--shutdown_grace=2s",
                         *flags)
        self.start()
        self.address = self.addr


def channel(address):
    # A connection of its own (no subchannel sharing), replies up to 64 MB.
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                   ("grpc.max_receive_message_length", 64 << 20)])


class RssSampler(threading.Thread):
    """Samples the server's VmRSS every 10 ms until stopped; `peak` is the largest seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self):
        while not self.done.wait(0.01):
            self.peak = max(self.peak, status_kb(self.pid, "VmRSS") << 10)


def test_heavy_calls_never_starve_light_ones(tmp_path):
    server = Server(tmp_path, f"--max_call_cost={MAX_CALL_COST}", "--max_heavy_queued=256")
    light_ch = channel(server.address)
    rss = RssSampler(server.proc.pid)
    try:
        light = pb_grpc.LrSchedulerStub(light_ch)
        light.CreateSession(pb.CreateSessionRequest(name="costly", spec_json=json.dumps(COSTLY)),
                            timeout=10)
        # The largest lookahead the server admits, from its refusal of a larger one.
        with pytest.raises(grpc.RpcError) as refused:
            light.GetLR(pb.GetLRRequest(name="costly", ahead=1_000_000), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        m = re.match(r"ahead: 1000000 steps x (\d+) cost units per step .* limit of "
                     rf"{MAX_CALL_COST} per call \(--max_call_cost\)", refused.value.details())
        assert m, refused.value.details()
        ahead = MAX_CALL_COST // int(m.group(1))
        assert ahead > 100
        # The heavy calls come from a process of their own: decoding 65 replies of 16 MB would
        # otherwise hold this one's GIL, and the light calls' times would measure that.
        rss.start()
        load = subprocess.Popen([sys.executable, __file__, server.address, str(ahead)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert load.stdout.readline().strip() == "sent"
            time.sleep(1.0)  # all sent, two running, the rest queued
            latencies = {}
            for rnd in range(3):
                name = f"light-{rnd}"
                for method, req in (
                        ("CreateSession",
                         pb.CreateSessionRequest(name=name, spec_json=json.dumps(COSINE))),
                        ("Step", pb.StepRequest(name=name)),
                        ("DeleteSession", pb.DeleteSessionRequest(name=name))):
                    t0 = time.monotonic()
                    getattr(light, method)(req, timeout=10)
                    latencies.setdefault(method, []).append(time.monotonic() - t0)
            light_done = time.monotonic()  # CLOCK_MONOTONIC: the child's clock too
            out, _ = load.communicate(timeout=HEAVY_TIMEOUT + 10)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        results = json.loads(out)
        # Heavy calls answered after the light ones were done (counted from the answers' times,
        # not by the child's main thread, which its 130 decoding threads can starve of the GIL).
        in_flight = sum(end > light_done for _, _, end in results)
        rss.done.set()
        rss.join()
        hwm = status_kb(server.proc.pid, "VmHWM") << 10
        after = status_kb(server.proc.pid, "VmRSS") << 10
        print(f"light call latencies (s): {latencies}; heavy calls in flight meanwhile: "
              f"{in_flight}; server peak RSS {rss.peak >> 20} MB, VmHWM {hwm >> 20} MB, "
              f"{after >> 20} MB after; slowest heavy call {max(t for _, t, _ in results):.1f} s")
        assert in_flight > HEAVY_CALLS // 2, "the heavy calls ended before the light ones ran"
        for method, times in latencies.items():
            assert max(times) < LIGHT_LIMIT, (method, times)
        assert len(results) == HEAVY_CALLS and all(ok for ok, _, _ in results), results
        assert SANITIZED or hwm < RSS_LIMIT, hwm
        # The replies' buffers went back to the system (glibc's arenas kept ~0.6 GB without the
        # server's fixed mmap threshold). Not under ASan (scripts/test.sh's sanitized stage), whose
        # own allocator keeps freed memory in quarantine: there RSS measures the sanitizer.
        if not SANITIZED:
            assert after < RSS_LIMIT // 2, after
    finally:
        rss.done.set()
        light_ch.close()
        assert server.stop() == 0, server.log()


def heavy_load(address, ahead):
    """The child process: sends HEAVY_CALLS heavy calls at once, one in ten maximal lookaheads
    of "costly", the rest maximal Simulates, and prints "sent"; then a JSON list of
    [ok, seconds, time.monotonic() at the answer], one per call."""
    ch = channel(address)
    heavy = pb_grpc.LrSchedulerStub(ch)
    simulate = pb.SimulateRequest(spec_json=json.dumps(WIDE, separators=(",", ":")), steps=1000)
    assert 20_000 < simulate.ByteSize() < 30_000  # as in the issue: 26 KB requests

    def call(i):
        t0 = time.monotonic()
        if i % 10 == 0:
            r = heavy.GetLR(pb.GetLRRequest(name="costly", ahead=ahead), timeout=HEAVY_TIMEOUT)
            ok = r.last_epoch == 0 and len(r.groups) == 1
        else:
            r = heavy.Simulate(simulate, timeout=HEAVY_TIMEOUT)
            ok = len(r.lr) == 1_000_000 and len(r.momentum) == 1_000_000
        end = time.monotonic()
        return ok, end - t0, end

    with concurrent.futures.ThreadPoolExecutor(HEAVY_CALLS) as pool:
        calls = [pool.submit(call, i) for i in range(HEAVY_CALLS)]
        print("sent", flush=True)
        results = [c.result() for c in calls]
    ch.close()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    heavy_load(sys.argv[1], int(sys.argv[2]))
