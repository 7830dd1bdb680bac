#!/usr/bin/python3
"""Random timm scheduler configurations, traced by timm's own code and by `lrsched simulate`,
compared bit for bit (every group's lr at every call, the call timm raises in, construction
refusals). Needs Debian's python3-torch and a pytorch-image-models checkout (timm itself is not
imported: its timm/scheduler/*.py are copied into a temporary package, as they import only torch,
numpy and each other).

    /usr/bin/python3 scripts/timm_parity_check.py TIMM_CHECKOUT build/client/lrsched [SEED] [N]

At 31a85de79aad (README.md "Spec", "timm"), seeds 1 and 7 (1300 configurations) agree.
"""
import json, random, sys, subprocess, os, shutil, tempfile, logging
logging.disable(logging.WARNING)  # timm's "no effect" warning for t_initial 1
TIMM, LRSCHED = sys.argv[1], sys.argv[2]
_pkg = tempfile.mkdtemp()
os.makedirs(os.path.join(_pkg, "timmsched"))
open(os.path.join(_pkg, "timmsched", "__init__.py"), "w").close()
for _f in ("scheduler", "cosine_lr", "tanh_lr", "step_lr", "multistep_lr", "plateau_lr", "poly_lr"):
    _text = open(os.path.join(TIMM, "timm", "scheduler", _f + ".py")).read()
    _text = _text.replace("from timm.scheduler.scheduler import", "from .scheduler import")
    open(os.path.join(_pkg, "timmsched", _f + ".py"), "w").write(_text)
sys.path.insert(0, _pkg)
import torch
from timmsched.cosine_lr import CosineLRScheduler
from timmsched.tanh_lr import TanhLRScheduler
from timmsched.step_lr import StepLRScheduler
from timmsched.multistep_lr import MultiStepLRScheduler
from timmsched.plateau_lr import PlateauLRScheduler
from timmsched.poly_lr import PolyLRScheduler
CL = dict(CosineLRScheduler=CosineLRScheduler, TanhLRScheduler=TanhLRScheduler, StepLRScheduler=StepLRScheduler,
          MultiStepLRScheduler=MultiStepLRScheduler, PlateauLRScheduler=PlateauLRScheduler, PolyLRScheduler=PolyLRScheduler)
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 0)

def rnd_case(i):
    cls = rng.choice(list(CL))
    k = {}
    groups = [{"lr": rng.choice([0.1, 0.05, 1e-3, 3e-4]), "momentum": 0.9} for _ in range(rng.randint(1, 3))]
    for g in groups:
        if rng.random() < 0.3: g["lr_scale"] = rng.choice([0.1, 0.5, 0.7])
        if rng.random() < 0.2: g["initial_lr"] = g["lr"] * 2
    if cls in ("CosineLRScheduler", "TanhLRScheduler", "PolyLRScheduler"):
        k["t_initial"] = rng.randint(1, 40)
        if rng.random() < 0.5: k["lr_min"] = rng.choice([0.0, 1e-5, 1e-3])
        if rng.random() < 0.5: k["cycle_mul"] = rng.choice([1.0, 1.5, 2.0, 0.9, 3.0])
        if rng.random() < 0.5: k["cycle_decay"] = rng.choice([0.5, 0.8, 1.0])
        if rng.random() < 0.6: k["cycle_limit"] = rng.randint(1, 6)
        if cls != "TanhLRScheduler" and rng.random() < 0.4: k["k_decay"] = rng.choice([0.5, 1.0, 2.0, 1.5])
        if cls == "TanhLRScheduler" and rng.random() < 0.5: k["lb"], k["ub"] = rng.choice([(-7.0, 3.0), (-5.0, 5.0), (-2.0, 1.0)])
        if cls == "PolyLRScheduler" and rng.random() < 0.5: k["power"] = rng.choice([0.5, 1.0, 2.0, 0.9])
    elif cls == "StepLRScheduler":
        k["decay_t"] = rng.choice([1, 3, 7, 2.4, 10])
        k["decay_rate"] = rng.choice([0.5, 0.1, 0.97])
    elif cls == "MultiStepLRScheduler":
        k["decay_t"] = sorted(rng.sample(range(1, 60), rng.randint(1, 4)))
        k["decay_rate"] = rng.choice([0.5, 0.1])
    else:
        k["decay_rate"] = rng.choice([0.5, 0.1])
        k["patience_t"] = rng.randint(0, 3)
        if rng.random() < 0.5: k["cooldown_t"] = rng.randint(0, 2)
        if rng.random() < 0.5: k["mode"] = rng.choice(["min", "max"])
        if rng.random() < 0.5: k["lr_min"] = rng.choice([0.0, 1e-3])
        if rng.random() < 0.3: k["threshold"] = rng.choice([1e-4, 0.01])
        if rng.random() < 0.5: k["noise_type"] = rng.choice(["normal", "uniform"])
    if rng.random() < 0.5:
        k["warmup_t"] = rng.randint(1, 8)
        k["warmup_lr_init"] = rng.choice([0.0, 1e-5, 1e-3])
        if cls != "PlateauLRScheduler" and rng.random() < 0.5: k["warmup_prefix"] = rng.random() < 0.5
    if cls != "PlateauLRScheduler" and rng.random() < 0.3: k["t_in_epochs"] = False
    if rng.random() < 0.5:
        k["noise_range_t"] = rng.choice([rng.randint(0, 20), [rng.randint(0, 10), rng.randint(10, 40)]])
        k["noise_pct"] = rng.choice([0.67, 0.1, 0.3, 1.0, 0.05])
        k["noise_seed"] = rng.randint(0, 100000)
    steps = rng.randint(5, 80)
    case = {"name": f"fuzz/{i}/{cls}", "optimizer": {"type": "SGD", "param_groups": groups},
            "scheduler": dict(type="timm." + cls, **k), "steps": steps}
    if cls == "PlateauLRScheduler":
        case["metrics"] = [None if rng.random() < 0.15 else round(rng.random(), 3) for _ in range(steps)]
    # trace with timm's code
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in groups]
    pg = []
    for p, g in zip(params, groups):
        d = dict(g); d["params"] = [p]; pg.append(d)
    opt = torch.optim.SGD(pg, lr=0.1)
    rows = []
    try:
        s = CL[cls](opt, **k)
    except Exception as e:
        case["expected"] = {"error": f"{type(e).__name__}: {e}", "error_at_step": -1}
        return case
    tin = getattr(s, "t_in_epochs", True) or cls == "PlateauLRScheduler"
    err = None
    for c in range(steps):
        rows.append([g["lr"] for g in opt.param_groups])
        try:
            if cls == "PlateauLRScheduler":
                s.step(c + 1, case["metrics"][c])
            elif tin:
                s.step(c + 1)
            else:
                s.step_update(c + 1)
        except Exception as e:
            err = (f"{type(e).__name__}: {e}", c)
            break
    case["expected"] = {"lr": rows}
    if err:
        case["expected"]["error"], case["expected"]["error_at_step"] = err
    return case

bad = 0
n = int(sys.argv[4]) if len(sys.argv) > 4 else 200
for i in range(n):
    case = rnd_case(i)
    out = subprocess.run([LRSCHED, "simulate", "-"], input=json.dumps(case),
                         capture_output=True, text=True)
    if out.returncode != 0:
        print("CLI FAIL", case["name"], out.stderr[:200]); bad += 1; continue
    got = json.loads(out.stdout)
    w = case["expected"]
    if w.get("error_at_step") == -1:
        if got.get("error_at_step") != -1:
            print("TIMM REFUSED, LRSCHED NOT", json.dumps(case["scheduler"]), w["error"]); bad += 1
        continue
    if got.get("error_at_step") == -1:
        print("LRSCHED REFUSED", json.dumps(case["scheduler"]), got["error"]); bad += 1; continue
    ok = got["lr"] == w["lr"] and got.get("error_at_step") == w.get("error_at_step")
    if not ok:
        bad += 1
        print("MISMATCH", json.dumps(case["scheduler"]), json.dumps(case["optimizer"]), got.get("error"), w.get("error"), got.get("error_at_step"), w.get("error_at_step"))
        for r, (a, b) in enumerate(zip(got["lr"], w["lr"])):
            if a != b: print("  row", r, a, b); break
print("bad", bad, "of", n)
shutil.rmtree(_pkg)
sys.exit(1 if bad else 0)
