#!/usr/bin/python3
"""lrsched's own torch-traced cases, beyond shared/golden's: what that file does not cover.

Regenerate tests/data/lrsched-extra-traces.jsonl (needs Debian's python3-torch):
  /usr/bin/python3 scripts/extra_golden_cases.py > /tmp/extra.json
  /usr/bin/python3 ../shared/golden/torch_trace.py /tmp/extra.json tests/data/lrsched-extra-traces.jsonl
"""
import json
import sys


def sgd(*lrs, momentum=None, initial=None):
    gs = []
    for i, lr in enumerate(lrs):
        g = {"lr": lr}
        if momentum is not None:
            g["momentum"] = momentum
        if initial is not None:
            g["initial_lr"] = initial[i]
        gs.append(g)
    return {"type": "SGD", "param_groups": gs}


def adam(*lrs, initial=None, betas=(0.9, 0.999)):
    gs = []
    for i, lr in enumerate(lrs):
        g = {"lr": lr, "betas": list(betas)}
        if initial is not None:
            g["initial_lr"] = initial[i]
        gs.append(g)
    return {"type": "Adam", "param_groups": gs}


def case(name, opt, sched, steps=60, **kw):
    d = {"name": "extra/" + name, "optimizer": opt, "scheduler": sched, "steps": steps}
    d.update(kw)
    return d


def cases():
    return [
        # Param-group lists.
        case("CyclicLR/lists-SGD-2-groups", sgd(0.1, 0.2, momentum=0.9),
             {"type": "CyclicLR", "base_lr": [0.01, 0.02], "max_lr": [0.1, 0.4],
              "step_size_up": 5, "step_size_down": 9, "mode": "triangular2",
              "base_momentum": [0.8, 0.6], "max_momentum": [0.9, 0.99]}, steps=80),
        case("CyclicLR/exp_range-momentum", sgd(0.1, momentum=0.9),
             {"type": "CyclicLR", "base_lr": 0.001, "max_lr": 0.006, "step_size_up": 3,
              "mode": "exp_range", "gamma": 0.97}, steps=50),
        case("CyclicLR/scale_fn-cycle", sgd(0.1, momentum=0.5),
             {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4,
              "scale_fn": "0.5 ** (x - 1) if x < 4 else 0.1"}, steps=40),
        case("CyclicLR/initial_lr-given-fresh", sgd(0.1, momentum=0.9, initial=[0.5]),
             {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4}, steps=12),
        case("OneCycleLR/lists-adam-2-groups", adam(0.01, 0.02),
             {"type": "OneCycleLR", "max_lr": [0.1, 0.3], "total_steps": 50,
              "base_momentum": [0.8, 0.85], "max_momentum": [0.9, 0.95], "pct_start": 0.25,
              "div_factor": 10.0, "final_div_factor": 100.0}, steps=50),
        case("OneCycleLR/three-phase-cos-sgd-lists", sgd(0.01, 0.01, momentum=0.9),
             {"type": "OneCycleLR", "max_lr": [0.5, 0.05], "total_steps": 37, "three_phase": True},
             steps=38),
        case("OneCycleLR/no-momentum", sgd(0.01),
             {"type": "OneCycleLR", "max_lr": 0.2, "total_steps": 20, "cycle_momentum": False},
             steps=20),
        case("OneCycleLR/pct_start-zero-division", adam(0.01),
             {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 10, "pct_start": 0.1}, steps=5),
        # Composites.
        case("SequentialLR/three-schedulers", sgd(0.1, 0.05, momentum=0.9),
             {"type": "SequentialLR", "schedulers": [
                 {"type": "LinearLR", "start_factor": 0.2, "total_iters": 4},
                 {"type": "ConstantLR", "factor": 0.5, "total_iters": 3},
                 {"type": "CosineAnnealingLR", "T_max": 20, "eta_min": 0.001}],
              "milestones": [4, 10]}, steps=40),
        case("SequentialLR/three-with-resume", sgd(0.03, initial=[0.1]),
             {"type": "SequentialLR", "schedulers": [
                 {"type": "ExponentialLR", "gamma": 0.9},
                 {"type": "StepLR", "step_size": 3, "gamma": 0.5},
                 {"type": "CosineAnnealingLR", "T_max": 10}],
              "milestones": [5, 12], "last_epoch": 7}, steps=30),
        case("SequentialLR/lambda-then-multistep", adam(0.2),
             {"type": "SequentialLR", "schedulers": [
                 {"type": "LambdaLR", "lr_lambda": "(epoch + 1) / 5"},
                 {"type": "MultiStepLR", "milestones": [3, 6], "gamma": 0.5},
                 {"type": "MultiplicativeLR", "lr_lambda": "0.9"}],
              "milestones": [5, 15]}, steps=30),
        case("ChainedScheduler/three", sgd(1.0, 0.5),
             {"type": "ChainedScheduler", "schedulers": [
                 {"type": "LinearLR", "start_factor": 0.5, "total_iters": 4},
                 {"type": "StepLR", "step_size": 3, "gamma": 0.8},
                 {"type": "CosineAnnealingLR", "T_max": 7}]}, steps=30),
        case("ChainedScheduler/with-sequential", sgd(1.0),
             {"type": "ChainedScheduler", "schedulers": [
                 {"type": "SequentialLR", "schedulers": [
                     {"type": "ConstantLR", "factor": 0.5, "total_iters": 2},
                     {"type": "ExponentialLR", "gamma": 0.95}], "milestones": [3]},
                 {"type": "StepLR", "step_size": 4, "gamma": 0.5}]}, steps=20),
        # Closed forms through step(epoch).
        case("StepLR/step-epoch", sgd(0.1), {"type": "StepLR", "step_size": 3, "gamma": 0.7},
             steps=12, epochs=[0, 2, 3, 7, 7, 1, 9, 12, 4, 30, 31, 5]),
        case("CosineAnnealingLR/step-epoch", sgd(0.1),
             {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 0.01},
             steps=10, epochs=[1, 2, 5, 3, 10, 15, 20, 21, 0, 4]),
        case("MultiStepLR/step-epoch", adam(0.1),
             {"type": "MultiStepLR", "milestones": [2, 5, 5], "gamma": 0.3},
             steps=8, epochs=[1, 2, 4, 5, 6, 3, 10, 0]),
        case("PolynomialLR/step-epoch", sgd(0.1), {"type": "PolynomialLR", "total_iters": 6},
             steps=8, epochs=[1, 3, 6, 7, 2, 0, 5, 9]),
        case("LinearLR/step-epoch", sgd(0.1),
             {"type": "LinearLR", "start_factor": 0.5, "end_factor": 0.1, "total_iters": 4},
             steps=6, epochs=[1, 2, 3, 4, 5, 0]),
        case("ConstantLR/step-epoch", sgd(0.1), {"type": "ConstantLR"},
             steps=6, epochs=[1, 4, 5, 6, 2, 0]),
        case("ExponentialLR/step-epoch", sgd(0.1), {"type": "ExponentialLR", "gamma": 0.8},
             steps=6, epochs=[1, 4, 5, 6, 2, 0]),
        case("LambdaLR/step-epoch", sgd(0.1), {"type": "LambdaLR", "lr_lambda": "1 / (epoch + 1)"},
             steps=5, epochs=[3, 1, 8, 0, 2]),
        # More of each.
        case("CosineAnnealingLR/past-T_max", sgd(0.1, 0.02), {"type": "CosineAnnealingLR", "T_max": 3},
             steps=30),
        case("CosineAnnealingLR/resume", sgd(0.07, 0.01, initial=[0.1, 0.02]),
             {"type": "CosineAnnealingLR", "T_max": 25, "eta_min": 0.001, "last_epoch": 30},
             steps=40),
        case("CosineAnnealingWarmRestarts/resume", adam(0.05, initial=[0.1]),
             {"type": "CosineAnnealingWarmRestarts", "T_0": 4, "T_mult": 3, "last_epoch": 17},
             steps=50),
        case("CosineAnnealingWarmRestarts/epochs-Tmult2", sgd(0.1),
             {"type": "CosineAnnealingWarmRestarts", "T_0": 2, "T_mult": 2, "eta_min": 0.01},
             steps=16, epochs=[0.5, 1.5, 2.0, 2.5, 5.9, 6.0, 6.1, 13.99, 14.0, 30.5, 1.0, 0, 3,
                               100.25, 7.75, 62.0]),
        case("ReduceLROnPlateau/max-rel-cooldown", adam(0.1, 0.2),
             {"type": "ReduceLROnPlateau", "mode": "max", "factor": 0.5, "patience": 0,
              "cooldown": 2, "threshold": 0.05, "min_lr": 0.01}, steps=30,
             metrics=[0.5, 0.52, 0.6, 0.59, 0.58, 0.7, 0.7, 0.7, 0.71, 0.72] * 3),
        case("ReduceLROnPlateau/min-abs-eps", sgd(0.01, momentum=0.9),
             {"type": "ReduceLROnPlateau", "threshold_mode": "abs", "threshold": 0.1,
              "patience": 1, "eps": 0.004, "factor": 0.5}, steps=20,
             metrics=[1.0 - 0.01 * i for i in range(20)]),
        case("LambdaLR/resume", sgd(0.05, 0.5, initial=[0.1, 1.0]),
             {"type": "LambdaLR", "lr_lambda": ["0.9 ** epoch", "1 if epoch < 12 else 0.5"],
              "last_epoch": 9}, steps=10),
        case("LambdaLR/math", adam(0.3),
             {"type": "LambdaLR", "lr_lambda": "max(0.05, 0.5 * (1 + cos(pi * epoch / 20))) * sqrt(1 + epoch % 3) / exp(epoch / 100) + abs(-floor(epoch / 7)) * tanh(epoch) / (ceil(log(epoch + 2, 2)) ** 2)"},
             steps=45),
        case("LinearLR/decreasing", sgd(0.1),
             {"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.05, "total_iters": 7}, steps=10),
        case("PolynomialLR/power-half", adam(0.5), {"type": "PolynomialLR", "total_iters": 9, "power": 0.5},
             steps=12),
        case("MultiplicativeLR/lists", sgd(0.5, 0.25),
             {"type": "MultiplicativeLR", "lr_lambda": ["0.95", "1.0 if epoch % 2 else 0.8"]}, steps=20),
        # Errors torch raises at a step.
        case("errors/lambda-zero-division", sgd(0.1), {"type": "LambdaLR", "lr_lambda": "1 / (epoch - 3)"},
             steps=6),
        case("errors/lambda-overflow", sgd(0.1), {"type": "LambdaLR", "lr_lambda": "exp(epoch * 100)"},
             steps=10),
        case("errors/lambda-domain", sgd(0.1), {"type": "LambdaLR", "lr_lambda": "sqrt(2 - epoch)"},
             steps=6),
        # Errors torch raises at construction.
        case("errors/ConstantLR-factor", sgd(0.1), {"type": "ConstantLR", "factor": 1.5}, steps=3),
        case("errors/ReduceLROnPlateau-factor", sgd(0.1), {"type": "ReduceLROnPlateau", "factor": 1.0},
             steps=3, metrics=[1, 1, 1]),
        case("errors/CyclicLR-momentum-adam", adam(0.1),
             {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1}, steps=3),
        case("errors/OneCycleLR-pct_start", sgd(0.1), {"type": "OneCycleLR", "max_lr": 0.1,
                                                      "total_steps": 10, "pct_start": 1.5}, steps=3),
        case("errors/CosineAnnealingWarmRestarts-T_mult", sgd(0.1),
             {"type": "CosineAnnealingWarmRestarts", "T_0": 3, "T_mult": 0}, steps=3),
        case("errors/LambdaLR-list-length", sgd(0.1, 0.2), {"type": "LambdaLR", "lr_lambda": ["1.0"]}, steps=3),
        case("errors/OneCycleLR-resume-no-max_lr", sgd(0.1, initial=[0.1]),
             {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 10, "last_epoch": 3}, steps=3),
        case("errors/LinearLR-end-factor", sgd(0.1), {"type": "LinearLR", "end_factor": 1.5}, steps=3),
        case("errors/ReduceLROnPlateau-mode", sgd(0.1), {"type": "ReduceLROnPlateau", "mode": "up"},
             steps=3, metrics=[1, 1, 1]),
    ]


if __name__ == "__main__":
    json.dump(cases(), sys.stdout, indent=1)
