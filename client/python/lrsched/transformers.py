"""transformers' schedules served by lrsched: `get_scheduler` is transformers'
`get_scheduler(name, optimizer, num_warmup_steps, num_training_steps, scheduler_specific_kwargs)`
returning a `lrsched.torch.RemoteLRScheduler` (a LambdaLR-like scheduler, or a
ReduceLROnPlateau one) that `transformers.Trainer(optimizers=(opt, sched))` drives unchanged:

    from lrsched.transformers import get_scheduler
    sched = get_scheduler("cosine", opt, num_warmup_steps=100, num_training_steps=10_000,
                          session="run-17", server="127.0.0.1:50051")
    trainer = Trainer(model=model, args=args, optimizers=(opt, sched), ...)

`RemoteLRScheduler(opt, {"type": "transformers.get_scheduler", "name": "cosine", ...})` is the
same thing spelt as a spec. Neither this module nor lrsched.torch imports torch or
transformers (code in this package imports absolute names, so it never shadows them).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Mapping, Optional

from lrsched._types import Optimizer

if TYPE_CHECKING:  # lrsched.torch imports this module
    from lrsched.torch import RemoteLRScheduler

__all__ = ["SPEC_TYPE", "NAMES", "get_scheduler"]

SPEC_TYPE = "transformers.get_scheduler"
# transformers' SchedulerType values lrsched serves (2da00a3cec88; "greedy" is not served).
NAMES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
         "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr",
         "cosine_warmup_with_min_lr", "warmup_stable_decay")

_plateau_classes = {}


def get_scheduler(name: str, optimizer: Optimizer, num_warmup_steps: Optional[int] = None,
                  num_training_steps: Optional[int] = None,
                  scheduler_specific_kwargs: Optional[Mapping[str, Any]] = None, *,
                  session: str, **remote_kwargs: Any) -> RemoteLRScheduler:
    """transformers.get_scheduler(...) whose schedule lives in the lrsched session `session`;
    remote_kwargs go to RemoteLRScheduler (server=, client=, resume=, ...)."""
    from lrsched.torch import RemoteLRScheduler  # lrsched.torch imports this module
    spec = {"type": SPEC_TYPE, "name": getattr(name, "value", name),
            "scheduler_specific_kwargs": dict(scheduler_specific_kwargs or {})}
    if num_warmup_steps is not None:
        spec["num_warmup_steps"] = num_warmup_steps
    if num_training_steps is not None:
        spec["num_training_steps"] = num_training_steps
    return RemoteLRScheduler(optimizer, spec, name=session, **remote_kwargs)


def check_default_lr(optimizer, scheduler):
    """transformers reads `optimizer.defaults["lr"]` for polynomial (lr_init) and for min_lr;
    the spec has no such field and lrsched takes the first group's initial_lr (or lr). Raise
    ValueError where the optimizer's defaults say otherwise, rather than serve other values."""
    if not isinstance(scheduler, dict) or scheduler.get("type") != SPEC_TYPE:
        return
    kwargs = scheduler.get("scheduler_specific_kwargs") or {}
    name = scheduler.get("name")
    if not (name == "polynomial" or (name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr")
                                     and kwargs.get("min_lr") is not None)):
        return
    defaults = getattr(optimizer, "defaults", None)
    if not isinstance(defaults, dict) or defaults.get("lr") is None:
        return
    first = optimizer.param_groups[0]
    lr = first.get("initial_lr", first.get("lr"))
    if float(defaults["lr"]) != float(lr):
        raise ValueError(
            f"RemoteLRScheduler: transformers' {name} reads optimizer.defaults['lr'] "
            f"({defaults['lr']!r}); lrsched uses the first param group's initial_lr or lr "
            f"({lr!r}); build the optimizer with lr={lr!r} so that both agree")


def plateau_class(base):
    """`base` (RemoteLRScheduler) made a subclass of torch's ReduceLROnPlateau too, or None if
    torch is not imported. transformers' Trainer steps a scheduler with the evaluation metric
    only if `isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)` (and otherwise
    after every optimizer step), so a plateau session must pass that check. base's methods come
    first in the MRO; torch's class only lends its name to isinstance."""
    torch = sys.modules.get("torch")
    plateau = getattr(getattr(getattr(torch, "optim", None), "lr_scheduler", None),
                      "ReduceLROnPlateau", None)
    if plateau is None:
        return None
    if (base, plateau) not in _plateau_classes:
        _plateau_classes[(base, plateau)] = type(
            base.__name__, (base, plateau),
            {"__module__": base.__module__, "__doc__": base.__doc__})
    return _plateau_classes[(base, plateau)]
