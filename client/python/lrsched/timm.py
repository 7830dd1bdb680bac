"""`lrsched.timm.RemoteScheduler`: timm's scheduler interface (timm.scheduler.Scheduler:
step(epoch, metric), step_update(num_updates, metric), state_dict(), load_state_dict()) over an
lrsched session of a `timm.<Class>` spec, so that timm's train.py drives it unchanged:

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = RemoteScheduler(opt, {"type": "timm.CosineLRScheduler", "t_initial": 300,
                                  "warmup_t": 5, "warmup_lr_init": 1e-5}, name="run-17")
    for epoch in range(start_epoch, 300):
        for batch in loader:
            ...; opt.step(); num_updates += 1
            sched.step_update(num_updates=num_updates)   # a no-op unless t_in_epochs=False
        sched.step(epoch + 1, eval_metric)

This module does not import timm or torch: any object with `param_groups` serves.

Invariants: after construction and after every call that moves the schedule (step() when the
spec's t_in_epochs is true, the default; step_update() when it is false; PlateauLRScheduler:
step() only), each param group's "lr" holds exactly the value timm's scheduler would have
written (lr_scale applied), and `t` is the session's t. The other call is a no-op, as in timm
(timm stores its metric; the session keeps the metric of the calls that reach it).
"""
from __future__ import annotations

import json

from typing import Any, Mapping, Optional

from lrsched._types import Optimizer, StateDict
from lrsched.client import DEFAULT_RETRY_TIMEOUT, DEFAULT_TARGET, Client
from lrsched._adapter import OwnedClientMixin
from lrsched._optimizer import _group_spec, _number, _optimizer_type, _param_groups

__all__ = ["RemoteScheduler", "TIMM_TYPES"]

TIMM_TYPES = ("CosineLRScheduler", "TanhLRScheduler", "StepLRScheduler", "MultiStepLRScheduler",
              "PlateauLRScheduler", "PolyLRScheduler")
# The key state_dict() adds to timm's keys: lrsched's own full state (timm's state_dict has no
# t, and Plateau's only best and last_epoch); timm's load_state_dict would ignore it.
STATE_KEY = "_lrsched_state"


def build_spec(optimizer, scheduler, *, optimizer_type=None):
    """The session spec: the optimizer's groups (lr, initial_lr, momentum/betas, lr_scale) and
    `scheduler`, {"type": "timm.CosineLRScheduler", ...} (the "timm." prefix may be left out)."""
    if not isinstance(scheduler, dict) or not isinstance(scheduler.get("type"), str):
        raise TypeError('RemoteScheduler: scheduler must be a dict with a "type", e.g. '
                        '{"type": "timm.CosineLRScheduler", "t_initial": 300}')
    scheduler = dict(scheduler)
    if not scheduler["type"].startswith("timm."):
        scheduler["type"] = "timm." + scheduler["type"]
    groups = _param_groups(optimizer)
    specs = []
    for g in groups:
        s = _group_spec(g)
        if g.get("lr_scale") is not None:
            s["lr_scale"] = _number(g["lr_scale"])
        specs.append(s)
    spec = {"optimizer": {"type": optimizer_type or _optimizer_type(optimizer, groups),
                          "param_groups": specs},
            "scheduler": scheduler}
    return json.loads(json.dumps(spec, allow_nan=False))


class RemoteScheduler(OwnedClientMixin):
    """A timm scheduler backed by the lrsched session `name` (created, or continued if one of
    that name and spec exists). Errors: lrsched.InvalidArgument for a configuration timm (or
    lrsched) refuses; lrsched.FailedPrecondition from the call timm would raise in (a
    cycle_mul < 1 schedule running out), the session left unchanged."""

    def __init__(self, optimizer: Optimizer, scheduler: Mapping[str, Any], *, name: str,
                 server: str = DEFAULT_TARGET, client: Optional[Client] = None,
                 optimizer_type: Optional[str] = None, timeout: Optional[float] = 10.0,
                 retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
                 retries: Optional[int] = None) -> None:
        self.optimizer = optimizer
        self.name = name
        self.spec = build_spec(optimizer, scheduler, optimizer_type=optimizer_type)
        sched = self.spec["scheduler"]
        self.plateau = sched["type"] == "timm.PlateauLRScheduler"
        self.t_in_epochs = True if self.plateau else bool(sched.get("t_in_epochs", True))
        self._owns_client = client is None
        self.client = client if client is not None else Client(
            server, timeout=timeout, retry_timeout=retry_timeout, retries=retries)
        try:
            self._adopt(self.client.create_session(name, self.spec))
            # timm's constructor: group.setdefault("initial_lr", group["lr"]).
            exported = self.client.export_state(name).torch_param_groups
            for group, g in zip(self.optimizer.param_groups, exported):
                if "initial_lr" in g:
                    group.setdefault("initial_lr", g["initial_lr"])
        except BaseException:
            self.close()
            raise

    # -- timm's Scheduler interface ----------------------------------------------------------

    def step(self, epoch: int, metric: Optional[float] = None) -> None:
        """timm's step(epoch, metric): at the end of an epoch, with the next epoch's index."""
        if self.t_in_epochs:
            self._step(epoch, metric)

    def step_update(self, num_updates: int, metric: Optional[float] = None) -> None:
        """timm's step_update(num_updates, metric): after each optimizer update."""
        if not self.t_in_epochs and not self.plateau:
            self._step(num_updates, metric)

    def state_dict(self) -> StateDict:
        """timm's scheduler.state_dict() for the session, plus STATE_KEY: lrsched's complete
        state, which load_state_dict() prefers."""
        exported = self.client.export_state(self.name)
        sd = exported.torch_state_dict
        sd[STATE_KEY] = exported.state
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Puts the session back to `state_dict`: one of state_dict() (exactly that state,
        t included) or a timm scheduler's own, restored onto the optimizer's current param
        groups (load the optimizer's checkpoint first). A timm state_dict holds no t: call
        step(start_epoch) (step_update(start_epoch * updates_per_epoch)) next, as timm's
        train.py does on resume."""
        if STATE_KEY in state_dict:
            session = self.client.import_state(self.name, state=state_dict[STATE_KEY],
                                               replace=True)
        else:
            spec = build_spec(self.optimizer, self.spec["scheduler"],
                              optimizer_type=self.spec["optimizer"]["type"])
            session = self.client.import_state(self.name, torch_spec=spec,
                                               torch_state_dict=dict(state_dict), replace=True)
        self._adopt(session)

    # -- beyond timm -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (f"RemoteScheduler(name={self.name!r}, type={self.spec['scheduler']['type']!r}, "
                f"t={self.t})")

    # -- internals ---------------------------------------------------------------------------

    def _step(self, t, metric):
        result = self.client.step(self.name, epoch=int(t), metric=metric)
        self._adopt(result.session)

    def _adopt(self, session):
        self._session = session
        self.t = session.last_epoch
        for group, values in zip(self.optimizer.param_groups, session.groups):
            group["lr"] = values.lr
