"""The Python package `lrsched` (client/python) against a real lrsched-server process.

- parity: a training loop with lrsched.torch.RemoteLRScheduler over an object with
  `param_groups` reproduces every golden trace's lr and momentum exactly (==), refusals included
  (at construction or at the same step); with a real torch optimizer (when Debian's
  python3-torch is importable) it matches a real torch scheduler running side by side;
- the Client: error mapping, paging, lookahead, watch, export/import, retries across a server
  restart;
- RemoteLRScheduler: state_dict()/load_state_dict(), attach on a trainer restart, ranks that
  step the same epoch advance the session once.

Run by scripts/test.sh as `/usr/bin/python3 -m pytest tests/python` with LRSCHED_BIN_DIR set to
the build directory (holding server/lrsched-server); the build also generates the package's
gRPC modules. Every wait is bounded; the file runs in well under a minute.
"""
import json
import math
import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
BIN_DIR = os.environ.get("LRSCHED_BIN_DIR")
SERVER_BIN = os.path.join(BIN_DIR, "server", "lrsched-server") if BIN_DIR else None

if not BIN_DIR:
    pytest.skip("LRSCHED_BIN_DIR is not set (the CMake build directory; run scripts/test.sh)",
                allow_module_level=True)
if not os.access(SERVER_BIN, os.X_OK):
    pytest.skip(f"no server binary at {SERVER_BIN} (build the lrsched-server target)",
                allow_module_level=True)

import lrsched_source  # noqa: E402  (the installed package, or the source tree)
lrsched_source.use()
import grpc  # noqa: E402
import lrsched  # noqa: E402
from lrsched.torch import STATE_KEY, RemoteLRScheduler, build_spec  # noqa: E402
from ready import READY_TIMEOUT, wait_until_healthy  # noqa: E402

START_TIMEOUT = READY_TIMEOUT  # seconds for a server to answer a health check
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL
LINEAR_START_FACTOR_CASE = "errors/LinearLR-start-factor"


# -- the server process ---------------------------------------------------------------------

class ServerProcess:
    """One lrsched-server on 127.0.0.1 (port 0: any free one), its log in a file under the data
    directory's parent. start() returns once it answers a gRPC health check (ready.py)."""

    def __init__(self, data_dir, port=0):
        self.data_dir = pathlib.Path(data_dir)
        self.port = port
        self.proc = None
        self.log_path = None
        self.starts = 0

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.starts += 1
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                # synchronous=normal: durable across a process exit (all these tests need), and
                # no fsync per step, so thousands of steps stay fast on any disk.
                [SERVER_BIN, f"--listen=127.0.0.1:{self.port}", f"--data_dir={self.data_dir}",
                 "--sqlite_synchronous=normal", "--shutdown_grace=2s"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            # The log line tells the port chosen; the health check tells the server answers.
            while True:
                m = re.search(r"event=listening .*?addr=127\.0\.0\.1:(\d+)", self.log())
                if m:
                    break
                assert self.proc.poll() is None and time.monotonic() < deadline, \
                    f"lrsched-server did not start listening:\n{self.log()}"
                time.sleep(0.02)
            self.port = int(m.group(1))
            wait_until_healthy(self.address, self.proc, deadline, log=self.log,
                               what="lrsched-server")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT. Returns the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(STOP_TIMEOUT)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("lrsched") / "data")
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(server):
    with lrsched.Client(server.address, timeout=10.0, retries=2) as c:
        yield c


_names = iter(range(1, 1 << 30))


def fresh_name(prefix="t"):
    """A session name no other test uses (the module's tests share one server)."""
    return f"{prefix}/{next(_names)}"


# -- golden traces --------------------------------------------------------------------------

def golden_cases():
    cases = []
    for file in ("torch-1.13-traces.jsonl", "lrsched-extra-traces.jsonl"):
        for i, line in enumerate((DATA / file).read_text().splitlines()):
            if line.strip():
                case = json.loads(line)
                cases.append(pytest.param(case, id=f"{file}:{i + 1}:{case['name']}"))
    return cases


GOLDEN = golden_cases()


class FakeOptimizer:
    """Not torch: just `param_groups`, filled as torch_trace.py's make_optimizer has torch fill
    them (SGD: momentum defaults to 0; Adam: betas to (0.9, 0.999); lr to the first group's)."""

    def __init__(self, spec):
        kind = spec.get("type", "SGD")
        first_lr = spec["param_groups"][0]["lr"]
        self.param_groups = []
        for g in spec["param_groups"]:
            g = dict(g)
            g.setdefault("lr", first_lr)
            if kind == "SGD":
                g.setdefault("momentum", 0)
            else:
                g["betas"] = tuple(g.get("betas", (0.9, 0.999)))
            self.param_groups.append(g)


def read_groups(optimizer):
    """(lrs, momenta) as torch_trace.py records them before each step()."""
    lrs = [g["lr"] for g in optimizer.param_groups]
    moms = []
    for g in optimizer.param_groups:
        if "betas" in g:
            moms.append(g["betas"][0])
        elif "momentum" in g:
            moms.append(g["momentum"])
    return lrs, moms


def step_args(case, i):
    if "metrics" in case:
        return (case["metrics"][i],), {}
    if "epochs" in case:
        return (), {"epoch": case["epochs"][i]}
    return (), {}


def golden_session_name(case):
    return "golden/" + re.sub(r"[^A-Za-z0-9._/-]", "_", case["name"]) + f"/{next(_names)}"


@pytest.mark.parametrize("case", GOLDEN)
def test_golden_trace_with_param_groups_object(case, client):
    want = case["expected"]
    opt = FakeOptimizer(case["optimizer"])
    name = golden_session_name(case)
    if want.get("error_at_step") == -1 or case["name"] == LINEAR_START_FACTOR_CASE:
        # lrsched refuses LinearLR start_factor=0 at construction (torch 1.13: at step 0).
        with pytest.raises(lrsched.InvalidArgument) as e:
            RemoteLRScheduler(opt, case["scheduler"], name=name, client=client)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.details
        with pytest.raises(lrsched.NotFound):
            client.get_session(name)
        return

    sched = RemoteLRScheduler(opt, case["scheduler"], name=name, client=client)
    lrs, moms, failed_at = [], [], None
    for i in range(case["steps"]):
        lr, mom = read_groups(opt)
        lrs.append(lr)
        moms.append(mom)
        args, kwargs = step_args(case, i)
        try:
            sched.step(*args, **kwargs)
        except lrsched.FailedPrecondition:
            failed_at = i
            break
        assert sched.advanced and sched.last_epoch == sched.session.last_epoch

    assert failed_at == want.get("error_at_step")
    assert lrs == want["lr"]  # float ==: bit for bit
    if "momentum" in want:
        assert moms == want["momentum"]
    if "state_dict" in want:
        assert json.loads(client.export_state(name).torch_state_dict_json) == want["state_dict"]
    assert client.get_session(name).last_epoch == sched.last_epoch


# -- the same against real torch -------------------------------------------------------------

_SAFE_MATH = ("cos", "sin", "tan", "exp", "log", "sqrt", "floor", "ceil", "tanh", "pi", "e")


def _lam(expr, var="epoch"):
    """torch_trace.py's lambdas: Python expressions over `epoch` (alias `step`) or `x`."""
    env = {k: getattr(math, k) for k in _SAFE_MATH}
    env.update(min=min, max=max, abs=abs)
    code = compile(expr, "<expr>", "eval")
    return lambda v: eval(code, {"__builtins__": {}}, dict(env, **{var: v, "step": v}))


def torch_optimizer(torch, spec):
    """torch_trace.py's make_optimizer: SGD or Adam over a tiny nn.Linear."""
    params = list(torch.nn.Linear(2, 2).parameters())
    groups = []
    for i, g in enumerate(spec["param_groups"]):
        g = dict(g)
        g["params"] = [params[i % len(params)]] if len(spec["param_groups"]) > 1 else params
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    if spec.get("type", "SGD") == "SGD":
        return torch.optim.SGD(groups, lr=groups[0]["lr"])
    return torch.optim.Adam(groups, lr=groups[0]["lr"])


def torch_scheduler(torch, opt, cfg):
    """torch_trace.py's make_scheduler."""
    S = torch.optim.lr_scheduler
    cfg = dict(cfg)
    kind = cfg.pop("type")
    if kind in ("LambdaLR", "MultiplicativeLR"):
        f = cfg["lr_lambda"]
        cfg["lr_lambda"] = [_lam(e) for e in f] if isinstance(f, list) else _lam(f)
    if kind == "CyclicLR" and "scale_fn" in cfg:
        cfg["scale_fn"] = _lam(cfg["scale_fn"], "x")
    if kind in ("SequentialLR", "ChainedScheduler"):
        subs = [torch_scheduler(torch, opt, c) for c in cfg.pop("schedulers")]
        if kind == "ChainedScheduler":
            return S.ChainedScheduler(subs)
        return S.SequentialLR(opt, subs, **cfg)
    return getattr(S, kind)(opt, **cfg)


def import_torch():
    return pytest.importorskip("torch", reason="python3-torch is not installed for this "
                                               "interpreter: real-torch parity not checked")


# torch warns about scheduler.step() without optimizer.step(); these loops train nothing.
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", GOLDEN)
def test_side_by_side_with_real_torch(case, client):
    torch = import_torch()
    ref_opt = torch_optimizer(torch, case["optimizer"])
    opt = torch_optimizer(torch, case["optimizer"])
    name = golden_session_name(case)
    try:
        ref = torch_scheduler(torch, ref_opt, case["scheduler"])
    except Exception:  # torch refuses the configuration: so must lrsched, the same way
        with pytest.raises(lrsched.InvalidArgument):
            RemoteLRScheduler(opt, case["scheduler"], name=name, client=client)
        return
    if case["name"] == LINEAR_START_FACTOR_CASE:
        with pytest.raises(lrsched.InvalidArgument):
            RemoteLRScheduler(opt, case["scheduler"], name=name, client=client)
        with pytest.raises(ZeroDivisionError):
            ref.step()
        return

    sched = RemoteLRScheduler(opt, case["scheduler"], name=name, client=client)
    assert sched.spec["optimizer"]["type"] == type(opt).__name__
    for group in sched.spec["optimizer"]["param_groups"]:
        # What torch's schedulers read: momentum for SGD, betas for Adam.
        assert ("momentum" in group) == (type(opt).__name__ == "SGD")
        assert ("betas" in group) == (type(opt).__name__ == "Adam")
    for i in range(case["steps"]):
        assert read_groups(opt) == read_groups(ref_opt), f"before step {i}"
        args, kwargs = step_args(case, i)
        try:
            ref.step(*args, **kwargs)
        except Exception:  # torch refuses this step: so must lrsched, leaving the session as is
            epoch = sched.last_epoch
            with pytest.raises(lrsched.FailedPrecondition):
                sched.step(*args, **kwargs)
            assert client.get_session(name).last_epoch == epoch
            return
        sched.step(*args, **kwargs)
    assert read_groups(opt) == read_groups(ref_opt)
    for ref_group, group in zip(ref_opt.param_groups, opt.param_groups):
        assert group.get("initial_lr") == ref_group.get("initial_lr")
    if type(ref).__name__ != "ReduceLROnPlateau":  # torch 1.13's has no get_last_lr()
        assert sched.get_last_lr() == ref.get_last_lr()
    assert sched.last_epoch == getattr(ref, "last_epoch", sched.last_epoch)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_checkpoint_loads_into_remote_scheduler(client):
    """A real torch run's checkpoint (optimizer + scheduler state_dict) continues remotely
    exactly as it continues in torch."""
    torch = import_torch()
    spec = {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.05}]}
    cfg = {"type": "CosineAnnealingLR", "T_max": 12, "eta_min": 0.001}
    opt_a = torch_optimizer(torch, spec)
    sched_a = torch_scheduler(torch, opt_a, cfg)
    for _ in range(7):
        sched_a.step()
    ckpt = {"optimizer": opt_a.state_dict(), "scheduler": sched_a.state_dict()}

    # Resume, the torch way: build optimizer and scheduler, then load both checkpoints.
    opt_b = torch_optimizer(torch, spec)
    sched_b = torch_scheduler(torch, opt_b, cfg)
    opt_b.load_state_dict(ckpt["optimizer"])
    sched_b.load_state_dict(ckpt["scheduler"])
    opt_r = torch_optimizer(torch, spec)
    sched_r = RemoteLRScheduler(opt_r, cfg, name=fresh_name("ckpt"), client=client)
    opt_r.load_state_dict(ckpt["optimizer"])
    sched_r.load_state_dict(ckpt["scheduler"])
    assert sched_r.last_epoch == sched_b.last_epoch == 7
    for i in range(20):
        assert read_groups(opt_r) == read_groups(opt_b), f"step {i}"
        sched_b.step()
        sched_r.step()
    assert read_groups(opt_r) == read_groups(opt_b)
    # And the remote scheduler's state_dict loads into torch.
    sched_c = torch_scheduler(torch, torch_optimizer(torch, spec), cfg)
    sched_c.load_state_dict({k: v for k, v in sched_r.state_dict().items() if k != STATE_KEY})
    assert sched_c.last_epoch == sched_b.last_epoch


# -- the package itself ---------------------------------------------------------------------

COSINE = {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 0.001}


def sgd(lr=0.1, momentum=0.9, groups=1):
    return FakeOptimizer({"type": "SGD", "param_groups": [
        {"lr": lr * (g + 1), "momentum": momentum} for g in range(groups)]})


def test_import_needs_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` would now fail
            "import lrsched, lrsched.torch\n"
            "assert lrsched.torch.RemoteLRScheduler and lrsched.Client\n")
    env = lrsched_source.child_env()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr


def test_spec_from_param_groups():
    adam_like = FakeOptimizer({"type": "Adam", "param_groups": [{"lr": 0.01}]})
    spec = build_spec(adam_like, COSINE)
    assert spec["optimizer"] == {"type": "Adam",
                                 "param_groups": [{"lr": 0.01, "betas": [0.9, 0.999]}]}
    assert spec["scheduler"] == COSINE
    assert build_spec(sgd(), COSINE)["optimizer"] == {
        "type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]}

    class Plain:
        param_groups = [{"lr": 0.1, "initial_lr": 0.2, "weight_decay": 0.1, "params": [1]}]
    assert build_spec(Plain(), COSINE, optimizer_type="RMSprop")["optimizer"] == {
        "type": "RMSprop", "param_groups": [{"lr": 0.1, "initial_lr": 0.2}]}

    class SGD:  # named like torch's: the class name wins
        param_groups = [{"lr": 0.1, "betas": (0.8, 0.9)}]
    assert build_spec(SGD(), COSINE)["optimizer"]["type"] == "SGD"
    with pytest.raises(TypeError, match="expression strings"):
        build_spec(sgd(), {"type": "LambdaLR", "lr_lambda": lambda e: 0.9 ** e})
    with pytest.raises(TypeError, match="param_groups"):
        build_spec(object(), COSINE)


def test_error_mapping(client):
    with pytest.raises(lrsched.NotFound) as e:
        client.get_session("no/such/session")
    assert isinstance(e.value, lrsched.LrschedError) and isinstance(e.value, LookupError)
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "no/such/session" in e.value.details

    bad = {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
           "scheduler": {"type": "StepLR", "step_size": 0}}
    with pytest.raises(lrsched.InvalidArgument) as e:
        client.create_session(fresh_name(), bad)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "step_size" in e.value.details
    assert isinstance(e.value, ValueError)
    with pytest.raises(lrsched.InvalidArgument):
        client.get_session("bad..name")

    name = fresh_name()
    spec = build_spec(sgd(), COSINE)
    first = client.create_session(name, spec)
    assert client.create_session(name, json.dumps(spec)) == first  # a repeat is harmless
    with pytest.raises(lrsched.AlreadyExists) as e:
        client.create_session(name, build_spec(sgd(lr=0.2), COSINE))
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS

    with pytest.raises(lrsched.FailedPrecondition) as e:
        client.step(name, metric=0.5)  # a metric is only for ReduceLROnPlateau
    assert "metric" in e.value.details
    assert client.get_session(name).last_epoch == 0
    with pytest.raises(lrsched.FailedPrecondition):
        client.delete_session(name, if_revision=first.revision + 5)

    plateau = build_spec(sgd(), {"type": "ReduceLROnPlateau", "patience": 1})
    pname = fresh_name()
    assert client.create_session(pname, plateau).deterministic is False
    with pytest.raises(lrsched.FailedPrecondition):
        client.get_lr(pname, ahead=3)

    with lrsched.Client("127.0.0.1:1", timeout=2.0, retries=0) as down:
        with pytest.raises(lrsched.Unavailable) as e:
            down.get_session(name)
        assert e.value.code == grpc.StatusCode.UNAVAILABLE and isinstance(e.value, ConnectionError)


def test_client_calls(client):
    prefix = fresh_name("list")
    spec = build_spec(sgd(groups=2), COSINE)
    names = [f"{prefix}/{i:02d}" for i in range(5)]
    for i, n in enumerate(names):
        s = client.create_session(n, spec, labels={"run": prefix, "even": str(i % 2 == 0)})
        assert (s.name, s.last_epoch, s.revision, s.scheduler_type) == (n, 0, 1,
                                                                       "CosineAnnealingLR")
        assert s.lrs == [0.1, 0.2] and s.momenta == [0.9, 0.9] and s.spec == spec
        assert s.create_time is not None
    listed = list(client.list_sessions(name_prefix=prefix + "/", page_size=2))
    assert [s.name for s in listed] == names
    evens = client.list_sessions(name_prefix=prefix, labels={"even": "True"}, page_size=1)
    assert [s.name for s in evens] == names[0::2]

    sim = client.simulate(spec, 6)
    r = client.step(names[0])
    assert r.advanced and r.session.last_epoch == 1 and r.session.revision == 2
    r = client.step(names[0], if_epoch=0)  # stale: nothing happens
    assert not r.advanced and r.session.last_epoch == 1 and r.session.revision == 2
    lr = client.get_lr(names[0], ahead=2, window=4)
    assert (lr.last_epoch, lr.revision) == (1, 2)
    assert lr.lrs == sim.lr[3]
    assert [w.epoch for w in lr.window] == [1, 2, 3, 4]
    assert [w.lrs for w in lr.window] == sim.lr[1:5]
    assert sim.momentum == [[0.9, 0.9]] * 6 and sim.error is None and sim.error_at_step == -1
    assert client.get_session(names[0]).last_epoch == 1  # lookahead changed nothing
    # consistent=True (for etcd-backed servers) is the same read on SQLite.
    assert client.get_session(names[0], consistent=True).revision == 2
    assert client.get_lr(names[0], ahead=2, consistent=True).lrs == sim.lr[3]
    assert [s.name for s in client.list_sessions(name_prefix=prefix + "/",
                                                 consistent=True)] == names

    exported = client.export_state(names[0])
    assert exported.session.last_epoch == 1 and exported.state["format"] == "lrsched.schedule"
    assert exported.torch_state_dict["last_epoch"] == 1
    copy = fresh_name("copy")
    assert client.import_state(copy, state=exported.state_json).last_epoch == 1
    with pytest.raises(lrsched.AlreadyExists):
        client.import_state(copy, state=exported.state)
    for _ in range(3):
        a, b = client.step(names[0]), client.step(copy)
        assert a.session.groups == b.session.groups
    assert client.import_state(copy, state=exported.state, replace=True).last_epoch == 1

    client.delete_session(names[4], if_revision=1)
    with pytest.raises(lrsched.NotFound):
        client.delete_session(names[4])

    with pytest.raises(ValueError):
        client.create_session(fresh_name(), {"optimizer": {"type": "SGD", "param_groups": [
            {"lr": float("nan")}]}, "scheduler": COSINE})


def test_watch_follows_steps_until_delete(client):
    name = fresh_name("watch")
    client.create_session(name, build_spec(sgd(), COSINE))
    seen = queue.Queue()

    def follow():
        try:
            for s in client.watch(name, timeout=20):
                seen.put(s)
        except lrsched.LrschedError as e:
            seen.put(e)

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    assert seen.get(timeout=10).last_epoch == 0
    for _ in range(3):
        client.step(name)
    epochs = []
    while not epochs or epochs[-1] != 3:
        item = seen.get(timeout=10)
        assert isinstance(item, lrsched.Session), item
        epochs.append(item.last_epoch)
    assert epochs == sorted(epochs) and epochs[-1] == 3
    client.delete_session(name)
    end = seen.get(timeout=10)
    assert isinstance(end, lrsched.NotFound), end
    t.join(10)
    assert not t.is_alive()


def test_remote_scheduler_is_torch_like(client):
    opt = sgd(groups=2)
    sched = RemoteLRScheduler(opt, {"type": "StepLR", "step_size": 2, "gamma": 0.5},
                              name=fresh_name("torchlike"), client=client)
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.1, 0.2]
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.2]  # as torch leaves them
    sched.step()
    sched.step()
    assert sched.last_epoch == 2 and [g["lr"] for g in opt.param_groups] == [0.05, 0.1]
    sched.step(epoch=6)  # step(epoch): StepLR's closed form
    assert sched.last_epoch == 6 and sched.get_last_lr() == [0.1 * 0.5 ** 3, 0.2 * 0.5 ** 3]
    sched.step(4)  # positional: the epoch, as for torch's non-plateau schedulers
    assert sched.last_epoch == 4

    plateau_opt = FakeOptimizer({"type": "Adam", "param_groups": [{"lr": 1.0}]})
    plateau = RemoteLRScheduler(plateau_opt, {"type": "ReduceLROnPlateau", "patience": 0,
                                              "factor": 0.5},
                                name=fresh_name("plateau"), client=client)
    plateau.step(1.0)
    plateau.step(2.0)  # worse: patience 0 halves the lr
    assert plateau_opt.param_groups[0]["lr"] == 0.5 and plateau.last_epoch == 2
    assert plateau_opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_state_dict_round_trip(client):
    opt = sgd()
    sched = RemoteLRScheduler(opt, COSINE, name=fresh_name("sd"), client=client)
    for _ in range(5):
        sched.step()
    sd = sched.state_dict()
    assert sd["last_epoch"] == 5 and sd["base_lrs"] == [0.1] and STATE_KEY in sd
    json.dumps(sd)  # a checkpoint can hold it as it is
    at5 = read_groups(opt)
    after = []
    for _ in range(3):
        sched.step()
        after.append(read_groups(opt))
    sched.load_state_dict(sd)
    assert sched.last_epoch == 5 and read_groups(opt) == at5
    assert client.get_session(sched.name).last_epoch == 5
    for want in after:
        sched.step()
        assert read_groups(opt) == want

    # A torch-style state_dict (no lrsched part) loads too, onto the optimizer's groups.
    torch_sd = {k: v for k, v in sd.items() if k != STATE_KEY}
    opt2 = sgd()
    other = RemoteLRScheduler(opt2, COSINE, name=fresh_name("sd"), client=client)
    for g, values in zip(opt2.param_groups, sd[STATE_KEY]["param_groups"]):
        g.update(values)  # what optimizer.load_state_dict() would restore
    other.load_state_dict(torch_sd)
    assert other.last_epoch == 5 and read_groups(opt2) == at5
    other.step()
    assert read_groups(opt2) == after[0]


def test_trainer_restart_attaches_to_session(client):
    name = fresh_name("restart")
    first_opt = sgd()
    first = RemoteLRScheduler(first_opt, COSINE, name=name, client=client)
    for _ in range(4):
        first.step()
    first.close()  # the first trainer ends (its pipelined steps delivered)
    # A restarted trainer builds the same optimizer and scheduler: it continues at epoch 4.
    opt = sgd()
    again = RemoteLRScheduler(opt, COSINE, name=name, client=client)
    assert again.last_epoch == 4 and read_groups(opt) == read_groups(first_opt)
    again.step()
    assert again.last_epoch == 5 and again.advanced

    # A different spec under the same name is refused, unless attaching is asked for.
    other = {"type": "CosineAnnealingLR", "T_max": 99}
    with pytest.raises(lrsched.AlreadyExists):
        RemoteLRScheduler(sgd(), other, name=name, client=client)
    opt3 = sgd(lr=0.3)
    attached = RemoteLRScheduler(opt3, other, name=name, client=client, attach=True)
    assert attached.last_epoch == 5 and read_groups(opt3) == read_groups(opt)
    assert attached.scheduler_type == "CosineAnnealingLR"
    with pytest.raises(ValueError, match="param groups"):
        RemoteLRScheduler(sgd(groups=2), other, name=name, client=client, attach=True)


def test_ranks_stepping_the_same_epoch_advance_once(server):
    name = fresh_name("ranks")
    clients = [lrsched.Client(server.address, retries=2) for _ in range(4)]
    try:
        opts = [sgd() for _ in clients]
        ranks = [RemoteLRScheduler(o, COSINE, name=name, client=c) for o, c in zip(opts, clients)]
        # Sequentially: the first advances, the second finds the epoch moved and adopts it.
        ranks[0].step()
        assert ranks[0].advanced  # (reading it waits for the pipelined Step's answer)
        ranks[1].step()
        assert not ranks[1].advanced
        assert ranks[0].last_epoch == ranks[1].last_epoch == 1
        assert read_groups(opts[0]) == read_groups(opts[1])
        ranks[2].refresh()
        ranks[3].refresh()

        # Concurrently, epoch after epoch: every epoch advances the session exactly once.
        epochs = 8
        barrier = threading.Barrier(len(ranks), timeout=20)
        advanced = [0] * len(ranks)
        failures = []

        def rank(i):
            try:
                for _ in range(epochs):
                    barrier.wait()
                    ranks[i].step()
                    advanced[i] += ranks[i].advanced
            except Exception as e:  # reported below; a broken barrier releases the others
                failures.append(e)
                barrier.abort()

        threads = [threading.Thread(target=rank, args=(i,), daemon=True)
                   for i in range(len(ranks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not failures and not any(t.is_alive() for t in threads)
        assert sum(advanced) == epochs
        assert clients[0].get_session(name).last_epoch == 1 + epochs
        assert all(r.last_epoch == 1 + epochs for r in ranks)
        assert all(read_groups(o) == read_groups(opts[0]) for o in opts)

        # Rank 0 steps, another reads: get_lr and refresh() see rank 0's values.
        ranks[0].step()
        ranks[0].flush()  # its pipelined Step has reached the server
        assert clients[1].get_lr(name).lrs == ranks[0].get_last_lr()
        assert ranks[1].refresh().last_epoch == ranks[0].last_epoch
        assert read_groups(opts[1]) == read_groups(opts[0])
    finally:
        for c in clients:
            c.close()


def test_retries_across_a_server_restart(tmp_path):
    """The server stops and comes back (same data dir, same port) while a trainer steps: the
    retry-safe step goes through once it is back, nothing is lost and nothing doubles."""
    srv = ServerProcess(tmp_path / "data").start()
    try:
        with lrsched.Client(srv.address, timeout=5.0, retries=10, backoff=0.05,
                            max_backoff=0.5) as c:
            opt = sgd()
            sched = RemoteLRScheduler(opt, COSINE, name="restart/me", client=c)
            for _ in range(3):
                sched.step()
            assert srv.stop() == 0

            # Down: a step without if_epoch is not retried; one with it is (until retries end).
            with lrsched.Client(srv.address, timeout=2.0, retries=0) as once:
                with pytest.raises(lrsched.Unavailable):
                    once.step("restart/me")
            restarter = threading.Timer(0.5, srv.start)
            restarter.start()
            try:
                sched.step()  # retried until the server is back
            finally:
                restarter.join(START_TIMEOUT + 5)
            assert srv.proc is not None, "the server did not restart"
            assert sched.advanced and sched.last_epoch == 4
            assert c.get_session("restart/me").last_epoch == 4
            # The same step sent again (a retry after a lost reply) does not step twice.
            again = c.step("restart/me", if_epoch=3)
            assert not again.advanced and again.session.last_epoch == 4
            ref = c.simulate(sched.spec, 5)
            assert [g["lr"] for g in opt.param_groups] == ref.lr[4]
    finally:
        srv.stop()
