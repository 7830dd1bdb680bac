"""`RemoteLRScheduler`: a drop-in for a torch LR scheduler whose schedule lives in an lrsched
session, so it survives trainer restarts and is shared by every rank of a distributed job.

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = RemoteLRScheduler(opt, {"type": "CosineAnnealingLR", "T_max": 40}, name="run-17")
    for epoch in range(40):
        train_one_epoch(model, opt)      # reads opt.param_groups[i]["lr"] as usual
        sched.step()

This module does not import torch (and does not need it): any object with `param_groups`, a
list of dicts, serves as the optimizer. (Its name is `lrsched.torch`; code in this package
imports absolute names, so it never shadows the real `torch`.)

Invariants: after construction and after every step()/load_state_dict()/refresh(), each param
group's "lr" (and "momentum", or "betas"[0] for Adam-family groups) holds exactly the double the
session reports for `last_epoch`, and (unless follow=True) `last_epoch` is the session's
last_epoch: the optimizer looks exactly as it would under the torch scheduler the spec names.
A follower's `last_epoch` is its own count of step() calls, which may run ahead of the session
(its values come from the session's lookahead); see RemoteLRScheduler.
"""
from __future__ import annotations

import dataclasses
import functools
import weakref

from typing import Any, List, Mapping, Optional

from lrsched._types import Labels, Optimizer, StateDict
from lrsched.values import Session
from lrsched import _amend, _follow, _pipeline, _resume, transformers
from lrsched._adapter import OwnedClientMixin
from lrsched._optimizer import OPTIMIZER_TYPES, build_spec  # noqa: F401 (public here too)
from lrsched.client import DEFAULT_RETRY_TIMEOUT, DEFAULT_TARGET, Client

__all__ = ["RemoteLRScheduler", "OPTIMIZER_TYPES"]

# Keys the scheduler writes into groups at construction (torch's `group[...] = ...`), copied
# from the session so that optimizer.state_dict() holds what torch's would.
_CONSTRUCTION_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
# The key a RemoteLRScheduler state_dict() adds to torch's keys: lrsched's own full state.
STATE_KEY = "_lrsched_state"


class RemoteLRScheduler(OwnedClientMixin):
    """A torch-style LR scheduler backed by the lrsched session `name`.

    optimizer: a torch optimizer, or any object with `param_groups` (list of dicts with "lr",
    and optionally "initial_lr", "momentum" or "betas"). scheduler: torch's class name and
    keyword arguments as a dict; lambdas are expression strings ({"type": "LambdaLR",
    "lr_lambda": "0.95 ** epoch"}); or transformers' get_scheduler arguments ({"type":
    "transformers.get_scheduler", "name": "cosine", "num_warmup_steps": 100, ...}, see
    lrsched.transformers). A ReduceLROnPlateau session's object is also an instance of torch's
    ReduceLROnPlateau when torch is imported (trainers test that to pass the metric).
    name: the session. server/client: where it lives (a Client is created for `server` unless
    one is given; timeout, retry_timeout and retries configure it, see Client).
    optimizer_type: the torch optimizer class name to use instead of the inferred one.
    attach: if a session of that name exists with a *different* spec (for instance after
    optimizer.load_state_dict() changed the groups' lr), use it anyway instead of raising
    AlreadyExists. labels: the session's labels, when it is created.

    resume: "auto" (create the session, or continue the existing one of that name), "must"
    (continue it; NotFound if there is none) or "never" (a new run: AlreadyExists if the name is
    taken, saying how to delete it). "auto" refuses to let a new run (an optimizer that no
    scheduler has touched) attach to a finished schedule (OneCycleLR at total_steps). An
    optimizer restored from a checkpoint (its groups carry "initial_lr") attaches without
    attach=True: its lrs are the checkpoint's epoch's, not a different spec. Attaching to a
    session whose epoch is not the optimizer's warns (ResumeWarning, at the first step()) unless
    load_state_dict() puts the session back first. resume_epoch: put the session at that epoch
    of its schedule (replayed with plain steps: exact for a session that only took plain
    steps), for an optimizer restored from that epoch's checkpoint. launch_id: what tells this
    launch's ranks from the next launch's, for load_state_dict() (see client/python/README.md
    "Restarts and checkpoints").

    follow: for ranks that read but never step the session (another rank does). step() then
    makes no Step RPC: it moves this object to the next epoch and writes that epoch's values,
    taken from a lookahead window of `window` epochs fetched with one GetLR, into the param
    groups, so a follower costs one RPC per `window` steps. The window holds the server's exact
    values, so followers get the same bits as the stepping rank. Followers assume plain step()
    calls (step(epoch=...) raises ValueError; a metric is ignored: the stepping rank's counts).
    A follower may run ahead of the session (lookahead is exact for plain steps); behind it, it
    reads the session's record. A window computed before an amendment is dropped (_follow). For
    ReduceLROnPlateau (no lookahead) each step() reads the session's current values (one GetLR).
    A follower does not see changes that are not plain steps (load_state_dict() by another
    rank) until refresh(), which also sets its epoch to the session's.

    pipeline: for a deterministic schedule (all but ReduceLROnPlateau), plain step() calls take
    the next values from a lookahead window of `window` epochs and send their Step without
    waiting for it (lrsched/_step_pipeline.py); at most `max_pending` steps (default 1) run
    ahead of the server's answers, so an error is raised by the next step() at the latest,
    with the values corrected from the server. pipeline=False: every step() waits for its Step.
    flush() waits for the steps in flight; close() does so first.

    Construction creates the session (or, same spec, finds the one an earlier run created:
    a restarted trainer continues from the session's epoch) and writes its values into the
    param groups. Errors: InvalidArgument for a configuration torch (or lrsched) refuses,
    FailedPrecondition from step() for a step torch refuses (the session is left unchanged).
    """

    def __init__(self, optimizer: Optimizer, scheduler: Mapping[str, Any], *, name: str,
                 server: str = DEFAULT_TARGET, client: Optional[Client] = None,
                 attach: bool = False, labels: Optional[Labels] = None,
                 optimizer_type: Optional[str] = None, timeout: Optional[float] = 10.0,
                 retry_timeout: float = DEFAULT_RETRY_TIMEOUT, retries: Optional[int] = None,
                 follow: bool = False, window: int = 64, resume: str = "auto",
                 resume_epoch: Optional[int] = None, launch_id: Optional[str] = None,
                 pipeline: bool = True, max_pending: int = 1) -> None:
        if not isinstance(window, int) or not 1 <= window <= 10000:
            raise ValueError(f"RemoteLRScheduler: window must be an int in 1..10000, got "
                             f"{window!r}")
        self.follow = bool(follow)
        self.window = window
        self._follow = _follow.Follower()  # a follower's window (lrsched/_follow.py)
        self._pipeline = None  # a StepPipeline (lrsched/_pipeline.py) once construction is done
        self.optimizer = optimizer
        self.name = name
        self.scheduler_config = scheduler
        self.optimizer_type = optimizer_type
        self.launch_id = launch_id
        self._resume_check = None  # (session, restored lrs or None) until the first step()
        transformers.check_default_lr(optimizer, scheduler)
        self.spec = build_spec(optimizer, scheduler, optimizer_type=optimizer_type)
        if scheduler.get("type") == "megatron.OptimizerParamScheduler" and \
                scheduler.get("increment", 1) != 1:
            # Followers and the step pipeline count one epoch per step(); such a session's
            # last_epoch (num_steps) moves by the increment.
            raise ValueError("RemoteLRScheduler: a megatron.OptimizerParamScheduler spec with an "
                             "increment other than 1 needs lrsched.megatron."
                             "RemoteOptimizerParamScheduler (its step(increment))")
        self._owns_client = client is None
        self.client = client if client is not None else Client(
            server, timeout=timeout, retry_timeout=retry_timeout, retries=retries)
        self._advanced = None
        try:
            restored = any("initial_lr" in g for g in optimizer.param_groups)
            lrs_before = [g["lr"] for g in optimizer.param_groups] if restored else None
            session, existed = _resume.open_session(self, labels=labels, attach=attach,
                                                    resume=resume)
            if resume_epoch is not None:
                session, existed = _resume.rewind(self, session, resume_epoch), False
            if len(session.groups) != len(self.optimizer.param_groups):
                raise ValueError(
                    f"RemoteLRScheduler: session {name!r} has {len(session.groups)} param "
                    f"groups, the optimizer {len(self.optimizer.param_groups)}")
            self._adopt(session)
            if session.scheduler_type == "ReduceLROnPlateau":
                # Trainers (transformers' among them) pass the metric only to a scheduler that
                # is a torch ReduceLROnPlateau; see lrsched.transformers.plateau_class.
                self.__class__ = transformers.plateau_class(type(self)) or type(self)
            self._copy_construction_keys()
            _pipeline.attach(self, pipeline, max_pending)
            if existed:
                # Checked at the first step(), unless load_state_dict() comes first.
                self._resume_check = (session, lrs_before)
                # A weak reference: no cycle, so the object (and its client) is still
                # collected as soon as it is unused.
                self.step = functools.partial(_resume.first_step, weakref.ref(self))
        except BaseException:
            self.close()
            raise

    # -- torch's scheduler interface ---------------------------------------------------------

    def step(self, metrics: Optional[float] = None, epoch: Optional[float] = None) -> None:
        """scheduler.step(): step(), step(metric) for ReduceLROnPlateau, step(epoch=...).

        As with torch, a positional argument is the epoch for every scheduler except
        ReduceLROnPlateau. The request carries if_epoch = the last_epoch this object knows, so
        a retried RPC never steps twice and N ranks stepping from the same epoch advance the
        session once; when another rank was first (advanced False), this object adopts the
        session's state, which is the state that step produced."""
        if metrics is not None and epoch is None and self.scheduler_type != "ReduceLROnPlateau":
            metrics, epoch = None, metrics
        if self.follow:
            return self._follow.step(self, epoch)
        if self._pipeline is not None and metrics is None and epoch is None:
            taken = _pipeline.call(self, self._pipeline.step)
            if taken is not None:  # None: the schedule refuses a lookahead that far
                self._advanced = None  # known once acknowledged (see `advanced`)
                self._set_values(*taken)
                return
        _pipeline.flush(self)
        result = self.client.step(self.name, metric=metrics, epoch=epoch,
                                  if_epoch=self.last_epoch)
        self._adopt(result.session)
        self._advanced = result.advanced

    def get_last_lr(self) -> List[float]:
        """The learning rates the last step (or construction) set, one per param group."""
        return list(self._last_lr)

    def state_dict(self) -> StateDict:
        """torch's scheduler.state_dict() for this session (so a torch scheduler can load it),
        plus STATE_KEY: lrsched's complete state, which load_state_dict() prefers."""
        _pipeline.flush(self)
        exported = self.client.export_state(self.name)
        _resume.check_saved_epoch(self, exported.session)
        sd = exported.torch_state_dict
        sd[STATE_KEY] = exported.state
        sd[_resume.RESUME_KEY] = _resume.resume_record(exported)
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Puts the session back to `state_dict`: one from state_dict() (exactly that state),
        or a torch scheduler's state_dict(), which is restored onto the optimizer's current
        param groups (load the optimizer's checkpoint first, as with torch). Replaces the
        session's state for every rank using it. A state_dict() of this class is loaded once
        per launch: every rank of a launch may load it, in any order, also after another rank
        has stepped on; the next launch loading it rewinds the session again (_resume)."""
        _pipeline.flush(self)
        self._resume_check = None
        if _resume.RESUME_KEY in state_dict and STATE_KEY in state_dict:
            # Once per launch, however many ranks load it: see _resume.
            session, epoch, groups = _resume.load(self, state_dict)
            if epoch != session.last_epoch:
                # Another rank of this launch loaded it and stepped on: this rank is at the
                # checkpoint's epoch, and its next step() is answered "not advanced". The view
                # keeps revision - epoch (what the step pipeline checks for other writers).
                session = dataclasses.replace(
                    session, last_epoch=epoch, groups=list(groups),
                    revision=session.revision - (session.last_epoch - epoch))
            self._adopt(session)  # the checkpoint's epoch and values, whoever stepped since
        elif STATE_KEY in state_dict:
            session = self.client.import_state(self.name, state=state_dict[STATE_KEY],
                                               replace=True)
            self._adopt(session)
        else:
            spec = build_spec(self.optimizer, self.scheduler_config,
                              optimizer_type=self.optimizer_type)
            sd = {k: v for k, v in state_dict.items() if k != _resume.RESUME_KEY}
            session = self.client.import_state(self.name, torch_spec=spec,
                                               torch_state_dict=sd, replace=True)
            self._adopt(session)
        self._copy_construction_keys()

    # -- beyond torch ------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The session as last seen (after the last step/refresh; pipelined steps: once every
        step taken is acknowledged, which reading it waits for)."""
        _pipeline.flush(self)
        return self._pipeline.session if self._pipeline is not None else self._session

    @property
    def advanced(self) -> Optional[bool]:
        """Whether the last step() stepped the session (False: another rank already had).
        For a pipelined step, reading it waits until the step is acknowledged."""
        if self._advanced is None and self._pipeline is not None:
            _pipeline.flush(self)
            return self._pipeline.advanced
        return self._advanced

    def flush(self) -> None:
        """Waits until every step() taken so far has reached the server (pipelined steps,
        see README.md "Distributed training"); raises what went wrong."""
        _pipeline.flush(self)

    amend = _amend.scheduler_amend  # Client.amend on this session (lrsched/_amend.py)

    @property
    def scheduler_type(self) -> str:
        return self._session.scheduler_type

    def refresh(self) -> Session:
        """Reads the session and writes its values into the param groups: what a rank that
        does not step calls to follow the one that does. Returns the Session."""
        _pipeline.flush(self)
        session = self.client.get_session(self.name)
        self._adopt(session)
        return session

    def close(self) -> None:
        """Closes the client if this object created it. Idempotent. (Without it, the client is
        closed when collected or at interpreter exit.) Waits for pipelined steps still in
        flight first, and raises if they failed."""
        try:
            _pipeline.stop(self, wait=True)
        finally:
            self._close_client()

    def __exit__(self, *exc: object) -> None:
        try:
            _pipeline.stop(self, wait=exc[0] is None)  # an exception already propagates
        finally:
            self._close_client()

    def __repr__(self) -> str:
        return (f"RemoteLRScheduler(name={self.name!r}, type={self.scheduler_type!r}, "
                f"last_epoch={self.last_epoch})")

    # -- internals ---------------------------------------------------------------------------

    def _adopt(self, session):
        """Makes this object and the optimizer's param groups reflect `session`."""
        self._session = session
        self._follow.reset()  # a follower's window may predate this state (load_state_dict)
        if self._pipeline is not None:
            self._pipeline.reset(session)
        self._set_values(session.last_epoch, session.groups)

    def _set_values(self, epoch, groups):
        """Makes last_epoch `epoch` and writes its values (GroupValues per group) into the
        optimizer's param groups."""
        self.last_epoch = epoch
        self._last_lr = [g.lr for g in groups]
        for group, values in zip(self.optimizer.param_groups, groups):
            group["lr"] = values.lr
            if values.weight_decay is not None:  # a schedule that drives it (Megatron's)
                group["weight_decay"] = values.weight_decay
            if values.momentum is None:
                continue
            if "betas" in group:
                # torch (OneCycleLR, CyclicLR) writes betas back as a tuple.
                group["betas"] = (values.momentum, *tuple(group["betas"])[1:])
            elif "momentum" in group:
                group["momentum"] = values.momentum

    def _copy_construction_keys(self):
        """Writes initial_lr (and OneCycleLR's max_lr, ...) as torch's constructor leaves them in
        the groups, taken from the session's torch view of its param groups."""
        groups = self.client.export_state(self.name).torch_param_groups
        for group, exported in zip(self.optimizer.param_groups, groups):
            for key in _CONSTRUCTION_KEYS:
                if key in exported:
                    group[key] = exported[key]
