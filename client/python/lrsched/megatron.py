"""Megatron-LM's OptimizerParamScheduler, served by lrsched.

    from lrsched.megatron import RemoteOptimizerParamScheduler
    sched = RemoteOptimizerParamScheduler(
        optimizer, init_lr=0.0, max_lr=3e-4, min_lr=3e-5, lr_warmup_steps=2000 * gbs,
        lr_decay_steps=100000 * gbs, lr_decay_style="WSD", start_wd=0.1, end_wd=0.1,
        wd_incr_steps=100000 * gbs, wd_incr_style="constant", wsd_decay_steps=20000 * gbs,
        lr_wsd_decay_style="minus_sqrt", name="run-1", server="127.0.0.1:50051")
    for iteration in range(train_iters):
        ...                                  # forward, backward
        optimizer.step()
        sched.step(increment=gbs)            # Megatron: global batch size, or 1 per iteration

The constructor takes megatron.core.optimizer_param_scheduler.OptimizerParamScheduler's
arguments, in its order, and creates (or, with the same spec, finds) the session `name` of type
"megatron.OptimizerParamScheduler"; like Megatron's it leaves the values of step(0) in the
optimizer's param groups. step(increment) advances the session's num_steps (its last_epoch) and
writes every group's "lr" and "weight_decay", the exact doubles Megatron computes (its formulas,
per-group max_lr, min_lr, start_wd, end_wd and wd_mult overrides, in the groups as Megatron's
optimizer holds them). state_dict() is Megatron's own dict (its keys, so a checkpoint stays
loadable by Megatron and by this class); load_state_dict() follows Megatron's rules (the
checkpoint's values win unless use_checkpoint_opt_param_scheduler is False).

Steps carry if_epoch = the num_steps this object knows, so a retried RPC never steps twice, and
ranks that all step from the same num_steps advance the session once. torch is not required.
"""
from __future__ import annotations

import json
import math

from typing import Any, Mapping, Optional

from lrsched._types import Labels, Optimizer, StateDict
from lrsched import errors
from lrsched.client import DEFAULT_RETRY_TIMEOUT, DEFAULT_TARGET, Client
from lrsched._adapter import OwnedClientMixin
from lrsched._optimizer import _number, _optimizer_type, _param_groups

__all__ = ["RemoteOptimizerParamScheduler", "SCHEDULER_TYPE"]

SCHEDULER_TYPE = "megatron.OptimizerParamScheduler"

# Param-group keys the session needs: what an optimizer group holds for the scheduler (Megatron
# reads the overrides; weight_decay and the momentum keys are the group's starting values).
_GROUP_KEYS = ("lr", "momentum", "weight_decay", "max_lr", "min_lr", "start_wd", "end_wd",
               "wd_mult")


def _group_spec(group):
    out = {k: _number(group[k]) for k in _GROUP_KEYS if k in group and group[k] is not None}
    if "betas" in group and group["betas"] is not None:
        out["betas"] = [_number(b) for b in group["betas"]]
    return out


class RemoteOptimizerParamScheduler(OwnedClientMixin):
    """Megatron's OptimizerParamScheduler backed by the lrsched session `name`.

    optimizer: Megatron's (or torch's) optimizer, or any object whose `param_groups` is a list of
    dicts. The other positional arguments are Megatron's. Keyword-only: name (the session),
    server/client (where it lives; a Client is created for `server` unless one is given, with
    timeout, retry_timeout and retries), optimizer_type (torch's class name; inferred as in
    lrsched.torch: "betas" in the groups means the Adam family), labels (the session's, when it
    is created).

    Errors: InvalidArgument for a configuration Megatron asserts against (naming the argument);
    FailedPrecondition from step() for a step Megatron would raise at (WSD without
    lr_wsd_decay_style, an unknown decay style), the session left unchanged.
    """

    def __init__(self, optimizer: Optimizer, init_lr: float, max_lr: float, min_lr: float,
                 lr_warmup_steps: int, lr_decay_steps: int, lr_decay_style: str,
                 start_wd: float, end_wd: float, wd_incr_steps: int, wd_incr_style: str,
                 use_checkpoint_opt_param_scheduler: bool = True,
                 override_opt_param_scheduler: bool = False,
                 wsd_decay_steps: Optional[int] = None, lr_wsd_decay_style: Optional[str] = None,
                 *, name: str, server: str = DEFAULT_TARGET, client: Optional[Client] = None,
                 optimizer_type: Optional[str] = None, labels: Optional[Labels] = None,
                 timeout: Optional[float] = 10.0, retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
                 retries: Optional[int] = None) -> None:
        self.optimizer = optimizer
        self.name = name
        groups = _param_groups(optimizer)
        scheduler = {
            "type": SCHEDULER_TYPE, "init_lr": init_lr, "max_lr": max_lr, "min_lr": min_lr,
            "lr_warmup_steps": lr_warmup_steps, "lr_decay_steps": lr_decay_steps,
            "lr_decay_style": lr_decay_style, "start_wd": start_wd, "end_wd": end_wd,
            "wd_incr_steps": wd_incr_steps, "wd_incr_style": wd_incr_style,
            "use_checkpoint_opt_param_scheduler": use_checkpoint_opt_param_scheduler,
            "override_opt_param_scheduler": override_opt_param_scheduler,
        }
        if wsd_decay_steps is not None:
            scheduler["wsd_decay_steps"] = wsd_decay_steps
        if lr_wsd_decay_style is not None:
            scheduler["lr_wsd_decay_style"] = lr_wsd_decay_style
        spec = {"optimizer": {"type": optimizer_type or _optimizer_type(optimizer, groups),
                              "param_groups": [_group_spec(g) for g in groups]},
                "scheduler": scheduler}
        try:
            self.spec = json.loads(json.dumps(spec, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise TypeError(f"RemoteOptimizerParamScheduler: arguments must be plain numbers "
                            f"and strings: {e}") from None
        self._owns_client = client is None
        self.client = client if client is not None else Client(
            server, timeout=timeout, retry_timeout=retry_timeout, retries=retries)
        self._session = None
        try:
            self._adopt(self.client.create_session(name, self.spec, labels=labels))
        except BaseException:
            self.close()
            raise

    # -- Megatron's interface ----------------------------------------------------------------

    @property
    def num_steps(self) -> int:
        """Megatron's num_steps: the session's last_epoch as this object last saw it."""
        return self._session.last_epoch

    def step(self, increment: int) -> None:
        """num_steps += increment, then every group's lr and weight_decay (Megatron's
        step(increment)). When another rank stepped from the same num_steps first, this
        object takes the session's state (the one that step produced)."""
        result = self.client.step(self.name, increment=increment, if_epoch=self.num_steps)
        self._adopt(result.session)
        return None

    def get_lr(self, param_group: Mapping[str, Any]) -> float:
        """The learning rate Megatron's get_lr(param_group) gives at the current num_steps, for
        one of the optimizer's param groups (the value step() wrote)."""
        return self._session.groups[self._index(param_group)].lr

    def get_wd(self, param_group: Optional[Mapping[str, Any]] = None) -> float:
        """Megatron's get_wd(param_group): the weight decay before the group's wd_mult, from
        the group's start_wd/end_wd (or the scheduler's, without a group), at the current
        num_steps. Computed from the session's state_dict with Megatron's formula and order of
        operations, so it is the same double."""
        sd = self.state_dict()
        start, end = sd["start_wd"], sd["end_wd"]
        if param_group is not None:
            spec_group = self.spec["optimizer"]["param_groups"][self._index(param_group)]
            start, end = spec_group.get("start_wd", start), spec_group.get("end_wd", end)
        n, total, style = sd["num_steps"], sd["wd_incr_steps"], sd["wd_incr_style"]
        if n > total:
            return end
        if style == "constant":
            return end
        ratio = float(n) / float(total)
        if style == "linear":
            coeff = ratio
        else:  # "cosine": the session refuses any other style
            coeff = 0.5 * (math.cos(math.pi * (1 - ratio)) + 1.0)
        return start + coeff * (end - start)

    def state_dict(self) -> StateDict:
        """Megatron's state_dict(): max_lr, lr_warmup_steps, num_steps, lr_decay_style,
        lr_decay_steps, min_lr, start_wd, end_wd, wd_incr_style, wd_incr_steps."""
        return self.client.export_state(self.name).torch_state_dict

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Megatron's load_state_dict(): the session becomes this spec at the checkpoint's
        num_steps (older key names such as num_iters and start_lr are read too), with the
        checkpoint's settings unless use_checkpoint_opt_param_scheduler is False (then they
        must agree) or override_opt_param_scheduler is set (then the spec's stay). Writes the
        groups' lr and weight_decay, as Megatron's step(num_steps) there does."""
        session = self.client.import_state(self.name, torch_spec=self.spec,
                                           torch_state_dict=dict(state_dict), replace=True)
        self._adopt(session)

    # -- lrsched's additions -----------------------------------------------------------------

    def __repr__(self) -> str:
        return (f"RemoteOptimizerParamScheduler(name={self.name!r}, "
                f"num_steps={self.num_steps if self._session else None})")

    # -- internals ---------------------------------------------------------------------------

    def _index(self, param_group):
        for i, g in enumerate(self.optimizer.param_groups):
            if g is param_group:
                return i
        raise ValueError("RemoteOptimizerParamScheduler: param_group is not one of the "
                         "optimizer's param_groups")

    def _adopt(self, session):
        """Makes this object and the optimizer's param groups reflect `session`."""
        if len(session.groups) != len(self.optimizer.param_groups):
            raise errors.FailedPrecondition(
                f"RemoteOptimizerParamScheduler: session {self.name!r} has "
                f"{len(session.groups)} param groups, the optimizer "
                f"{len(self.optimizer.param_groups)}")
        self._session = session
        for group, values in zip(self.optimizer.param_groups, session.groups):
            group["lr"] = values.lr
            if values.weight_decay is not None:
                group["weight_decay"] = values.weight_decay
