#!/usr/bin/python3
"""Expected values of amended schedules (issue #18), computed with real torch.

Regenerate tests/data/amend-torch.jsonl (needs Debian's python3-torch):
  /usr/bin/python3 scripts/amend_torch_reference.py > tests/data/amend-torch.jsonl

Each case is a creation spec and a script of steps and amendments, as
tests/scheduler/amend_test.cc replays it against lrsched. The reference of each kind
(README "Changing a running schedule"):
  continue_with   a fresh torch scheduler of the given spec, constructed on an optimizer of the
                  same class whose groups hold the lr (and momentum/betas) served at at_epoch,
                  then stepped;
  reparameterize  a fresh torch run of the merged spec on the piece's starting optimizer,
                  stepped from the piece's start to at_epoch and on (ReduceLROnPlateau: the
                  running object with the changed attributes set, its state kept);
  scale           the schedule's own lr (its optimizer untouched) x factor.
Rows: every group's lr (and momentum or betas[0]) served before each step and at the end.
"""
import copy
import json
import math
import sys

import torch
from torch.optim import lr_scheduler as S


def make_optimizer(spec):
    groups = []
    for g in spec["param_groups"]:
        d = {k: (tuple(v) if k == "betas" else v) for k, v in g.items()}
        d["params"] = [torch.zeros(1, requires_grad=True)]
        groups.append(d)
    cls = getattr(torch.optim, spec.get("type", "SGD"))
    return cls(groups, lr=spec["param_groups"][0]["lr"])


def hf_lambda(kw):
    """transformers' get_scheduler lambdas (v4), as transformers builds them on LambdaLR."""
    name, w, n = kw["name"], kw.get("num_warmup_steps", 0), kw["num_training_steps"]
    cycles = kw.get("scheduler_specific_kwargs", {}).get("num_cycles", 0.5)

    def linear(step):
        if step < w:
            return float(step) / float(max(1, w))
        return max(0.0, float(n - step) / float(max(1, n - w)))

    def cosine(step):
        if step < w:
            return float(step) / float(max(1, w))
        progress = float(step - w) / float(max(1, n - w))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress)))

    return {"linear": linear, "cosine": cosine}[name]


def make_scheduler(opt, spec):
    kw = {k: v for k, v in spec.items() if k != "type"}
    t = spec["type"]
    if t == "SequentialLR":
        subs = [make_scheduler(opt, c) for c in kw.pop("schedulers")]
        return S.SequentialLR(opt, subs, **kw)
    if t == "transformers.get_scheduler":
        return S.LambdaLR(opt, hf_lambda(kw))
    return getattr(S, t)(opt, **kw)


def merge(base, patch):
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if k == "schedulers":
            out[k] = [merge(b, p) for b, p in zip(out[k], v)]
        elif v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


class Run:
    def __init__(self, spec):
        self.opt_spec, self.sched_spec = spec["optimizer"], spec["scheduler"]
        self.start = 0
        self.opt = make_optimizer(self.opt_spec)
        self.sched = make_scheduler(self.opt, self.sched_spec)
        self.scale = [1.0] * len(self.opt.param_groups)
        self.amendments = []  # [at_epoch, order, amendment dict, jump or None]

    def epoch(self):
        return self.start + self.sched.last_epoch

    def served_lr(self):
        return [g["lr"] * s for g, s in zip(self.opt.param_groups, self.scale)]

    def momentum(self):
        out = []
        for g in self.opt.param_groups:
            if "betas" in g:
                out.append(g["betas"][0])
            elif "momentum" in g:
                out.append(g["momentum"])
        return out

    def apply(self, a):
        before = self.served_lr()
        kind, args = a["kind"], a["args"]
        if kind == "continue_with":
            groups = []
            for g, lr in zip(self.opt.param_groups, before):
                d = {"lr": lr}
                if "betas" in g:
                    d["betas"] = list(g["betas"])
                elif "momentum" in g:
                    d["momentum"] = g["momentum"]
                groups.append(d)
            self.opt_spec = {"type": type(self.opt).__name__, "param_groups": groups}
            self.sched_spec = args
            self.opt = make_optimizer(self.opt_spec)
            self.sched = make_scheduler(self.opt, args)
            self.start = self._now
            self.scale = [1.0] * len(groups)
        elif kind == "reparameterize":
            merged = merge(self.sched_spec, args)
            if isinstance(self.sched, S.ReduceLROnPlateau):
                for k, v in args.items():  # torch's attributes: the state is kept
                    setattr(self.sched, k, v)
            else:
                opt = make_optimizer(self.opt_spec)
                sched = make_scheduler(opt, merged)
                while self.start + sched.last_epoch < self._now:
                    sched.step()
                self.opt, self.sched = opt, sched
            self.sched_spec = merged
        elif kind == "scale":
            groups = args.get("groups") or range(len(self.scale))
            for i in groups:
                self.scale[i] = args["factor"]
        return [x - y for x, y in zip(self.served_lr(), before)]

    def amend(self, a):
        entry = [a["at_epoch"], len(self.amendments), a, None]
        self.amendments.append(entry)
        if a["at_epoch"] == self.epoch():
            self._now = self.epoch()
            entry[3] = self.apply(a)

    def step(self, metric=None):
        if metric is None:
            self.sched.step()
        else:
            self.sched.step(metric)
        self._now = self.epoch()
        for e in sorted(self.amendments, key=lambda e: (e[0], e[1])):
            if e[3] is None and e[0] <= self._now:
                e[3] = self.apply(e[2])


def run_case(name, spec, script):
    r = Run(spec)
    lr, mom = [], []
    for op in script:
        if op["op"] == "amend":
            r.amend(op)
        else:
            for m in op.get("metrics", [None] * op.get("n", 1)):
                lr.append(r.served_lr())
                mom.append(r.momentum())
                r.step(m)
    lr.append(r.served_lr())
    mom.append(r.momentum())
    return {"name": name, "spec": spec, "script": script,
            "expected": {"lr": lr, "momentum": mom if mom[0] else None,
                         "jumps": [e[3] for e in r.amendments]}}


def sgd(*lrs, momentum=0.9):
    return {"type": "SGD", "param_groups": [{"lr": x, "momentum": momentum} for x in lrs]}


def steps(n, metrics=None):
    return {"op": "step", "n": n} if metrics is None else {"op": "step", "metrics": metrics}


def amend(kind, at, args):
    return {"op": "amend", "kind": kind, "at_epoch": at, "args": args}


def metrics(n, seed):
    g = torch.Generator().manual_seed(seed)
    # A loss that improves, then stalls with noise: plateaus and reductions happen.
    return [round(1.0 / (1 + i) + 0.5 + 0.05 * float(torch.rand(1, generator=g)), 6)
            if i < 8 else round(0.6 + 0.05 * float(torch.rand(1, generator=g)), 6)
            for i in range(n)]


def cases():
    cos = {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": 0.001}
    linear_cool = {"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.0, "total_iters": 20}
    seq = {"type": "SequentialLR", "milestones": [5], "schedulers": [
        {"type": "LinearLR", "start_factor": 0.1, "total_iters": 5},
        {"type": "CosineAnnealingLR", "T_max": 30, "eta_min": 0.0}]}
    plateau = {"type": "ReduceLROnPlateau", "factor": 0.5, "patience": 2, "cooldown": 1}
    hf = {"type": "transformers.get_scheduler", "name": "linear", "num_warmup_steps": 5,
          "num_training_steps": 30, "scheduler_specific_kwargs": {}}
    yield run_case("cosine-continue_with-LinearLR-at-37", {"optimizer": sgd(0.1, 0.05),
                   "scheduler": cos},
                   [steps(37), amend("continue_with", 37, linear_cool), steps(25)])
    yield run_case("OneCycleLR-continue_with-cosine-momentum-carried",
                   {"optimizer": sgd(0.1), "scheduler": {"type": "OneCycleLR", "max_lr": 0.1,
                                                         "total_steps": 100}},
                   [steps(30), amend("continue_with", 30,
                                     {"type": "CosineAnnealingLR", "T_max": 20, "eta_min": 1e-4}),
                    steps(25)])
    yield run_case("Adam-continue_with-transformers-linear",
                   {"optimizer": {"type": "Adam", "param_groups": [
                       {"lr": 0.001, "betas": [0.85, 0.99]}, {"lr": 0.002, "betas": [0.9, 0.999]}]},
                    "scheduler": {"type": "ExponentialLR", "gamma": 0.97}},
                   [steps(20), amend("continue_with", 20, hf), steps(35)])
    yield run_case("cosine-reparameterize-T_max-extended",
                   {"optimizer": sgd(0.1, 0.05), "scheduler": {"type": "CosineAnnealingLR",
                                                               "T_max": 50}},
                   [steps(30), amend("reparameterize", 30, {"T_max": 120}), steps(40)])
    yield run_case("SequentialLR-nested-reparameterize", {"optimizer": sgd(0.1, 0.02),
                                                          "scheduler": seq},
                   [steps(20), amend("reparameterize", 20, {"schedulers": [{}, {"T_max": 60}]}),
                    steps(30)])
    ms = metrics(40, 7)
    yield run_case("ReduceLROnPlateau-reparameterize-state-carried",
                   {"optimizer": sgd(0.1, 0.01), "scheduler": plateau},
                   [steps(0, ms[:18]), amend("reparameterize", 18, {"factor": 0.2, "patience": 4}),
                    steps(0, ms[18:])])
    yield run_case("ExponentialLR-scale-subset-then-another",
                   {"optimizer": sgd(0.1, 0.2, 0.3), "scheduler": {"type": "ExponentialLR",
                                                                   "gamma": 0.97}},
                   [steps(10), amend("scale", 10, {"factor": 0.5, "groups": [0, 2]}), steps(10),
                    amend("scale", 20, {"factor": 2.0, "groups": [1]}), steps(10),
                    amend("scale", 30, {"factor": 1.0}), steps(5)])
    yield run_case("cosine-pending-amendments-at-their-epochs",
                   {"optimizer": sgd(0.1, 0.05), "scheduler": cos},
                   [steps(5), amend("scale", 12, {"factor": 0.5}),
                    amend("continue_with", 20, {"type": "LinearLR", "start_factor": 1.0,
                                                "end_factor": 0.1, "total_iters": 20}),
                    amend("reparameterize", 30, {"total_iters": 40}),
                    amend("scale", 20, {"factor": 0.8, "groups": [1]}),
                    amend("reparameterize", 8, {"T_max": 40}),
                    steps(45)])
    yield run_case("chain-continue_with-reparameterize-scale",
                   {"optimizer": sgd(0.1), "scheduler": cos},
                   [steps(10), amend("continue_with", 10, linear_cool), steps(5),
                    amend("reparameterize", 15, {"total_iters": 50, "end_factor": 0.05}),
                    steps(5), amend("scale", 20, {"factor": 0.5}), steps(10),
                    amend("continue_with", 30, {"type": "ExponentialLR", "gamma": 0.9}), steps(5)])


if __name__ == "__main__":
    for c in cases():
        sys.stdout.write(json.dumps(c) + "\n")
