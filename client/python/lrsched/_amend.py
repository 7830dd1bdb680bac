"""Changing a running schedule (AmendSession) and reading its record (GetHistory): the values
they return, `AmendCalls` (mixed into `lrsched.Client`: amend(), history()) and
`scheduler_amend` (RemoteLRScheduler.amend). README.md "Changing a running schedule".

An amendment is sent once (never retried: the server may have applied it before an UNAVAILABLE
reply; history() shows whether it did); a dry run and history() are reads, retried as such.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence

from lrsched import errors
from lrsched._follow import RevisionWatch
from lrsched._proto import pb
from lrsched.values import EpochValues, Session, _groups, _time

__all__ = ["Amendment", "AmendResult", "History", "AmendCalls", "AmendAwareCache",
           "is_amendment", "scheduler_amend"]

_KINDS = ("continue_with", "set", "scale")


def _epochs(ms):
    return [EpochValues(epoch=m.epoch, groups=_groups(m.groups)) for m in ms]


@dataclass(frozen=True)
class Amendment:
    """One amendment as recorded: `kind` ("continue_with", "reparameterize", "scale"), `args`
    (its argument as a dict), `at_epoch`, `reason`, `revision` (the session's revision that
    recorded it), `time`, `caller`/`role` (with tokens), `applied` (False while at_epoch is
    still ahead) and `jump` (per group: lr at at_epoch with it minus without it)."""
    at_epoch: int
    kind: str
    args: dict
    reason: str
    revision: int
    time: object = None
    caller: str = ""
    role: str = ""
    applied: bool = False
    jump: List[float] = field(default_factory=list)

    @classmethod
    def from_proto(cls, m):
        return cls(at_epoch=m.at_epoch, kind=m.kind,
                   args=json.loads(m.args_json) if m.args_json else {}, reason=m.reason,
                   revision=m.revision, time=_time(m.time), caller=m.caller, role=m.role,
                   applied=m.applied, jump=list(m.jump))


@dataclass(frozen=True)
class AmendResult:
    """AmendSession's reply: the session after it (a dry run: as it is), the amendment, and for
    a dry run the epochs from at_epoch as they are (`current`) and would be (`amended`)."""
    session: Session
    amendment: Amendment
    current: List[EpochValues] = field(default_factory=list)
    amended: List[EpochValues] = field(default_factory=list)

    @classmethod
    def from_proto(cls, m):
        return cls(session=Session.from_proto(m.session),
                   amendment=Amendment.from_proto(m.amendment), current=_epochs(m.current),
                   amended=_epochs(m.amended))


@dataclass(frozen=True)
class History:
    """A session's record: the spec it was created (or last imported) with, every amendment,
    and the values each epoch from `first_epoch` on was given (`epochs`, in order)."""
    spec_json: str
    amendments: List[Amendment]
    epochs: List[EpochValues]
    first_epoch: int

    @property
    def spec(self):
        return json.loads(self.spec_json)

    @property
    def lrs(self):
        """lrs[i][g]: group g's lr at epochs[i].epoch."""
        return [e.lrs for e in self.epochs]


def _json_arg(what, value):
    """A dict (or JSON text) as JSON text; ValueError naming `what` otherwise."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise ValueError(f"amend: {what}: not JSON: {e}") from None
    else:
        parsed = value
    if not isinstance(parsed, dict):
        raise ValueError(f"amend: {what}: expected a dict, got {type(parsed).__name__}")
    try:
        return json.dumps(parsed, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"amend: {what}: {e}") from None


def amend_request(name, *, continue_with=None, set=None, scale=None, at_epoch=None,
                  groups=None, reason="", if_revision=None, dry_run=False, window=0):
    """The AmendSessionRequest for Client.amend's arguments (ValueError naming a bad one)."""
    given = [k for k, v in zip(_KINDS, (continue_with, set, scale)) if v is not None]
    if len(given) != 1:
        raise ValueError("amend: give exactly one of continue_with (a scheduler spec), set "
                         f"(keyword arguments to change) or scale (a factor); got {given or 'none'}")
    req = pb.AmendSessionRequest(name=name, reason=reason or "", dry_run=bool(dry_run))
    if groups is not None and scale is None:
        raise ValueError("amend: groups applies to scale only")
    if continue_with is not None:
        req.continue_with_json = _json_arg("continue_with", continue_with)
    elif set is not None:
        if not set:
            raise ValueError("amend: set: no keyword argument to change")
        req.reparameterize_json = _json_arg("set", set)
    else:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or \
                not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"amend: scale must be a finite number > 0, got {scale!r}")
        req.scale.factor = float(scale)
        for g in groups or ():
            if isinstance(g, bool) or not isinstance(g, int) or g < 0:
                raise ValueError(f"amend: groups: expected param group indices, got {groups!r}")
            req.scale.groups.append(g)
    if at_epoch is not None:
        if isinstance(at_epoch, bool) or not isinstance(at_epoch, int) or at_epoch < 0:
            raise ValueError(f"amend: at_epoch must be an int >= 0, got {at_epoch!r}")
        req.at_epoch = at_epoch
    if if_revision is not None:
        req.if_revision = int(if_revision)
    if not isinstance(window, int) or not 0 <= window <= 10000:
        raise ValueError(f"amend: window must be an int in 0..10000 (0: 100), got {window!r}")
    req.dry_run_window = window
    return req


class AmendCalls:
    """Client.amend() and Client.history() (mixed into lrsched.Client)."""

    def amend(self, name: str, *, continue_with: Optional[Mapping[str, Any]] = None,
              set: Optional[Mapping[str, Any]] = None, scale: Optional[float] = None,
              at_epoch: Optional[int] = None, groups: Optional[Sequence[int]] = None,
              reason: str = "", if_revision: Optional[int] = None, dry_run: bool = False,
              window: int = 0) -> AmendResult:
        """Changes session `name`'s schedule from `at_epoch` on (default: its current epoch;
        an earlier one raises FailedPrecondition: the past is never rewritten). Exactly one of:
        continue_with: a scheduler spec (dict) that takes over, built on the groups' values
        then (e.g. {"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.0,
        "total_iters": 2000}); set: keyword arguments of the schedule in force changed
        ({"T_max": 300}); scale: every lr (of `groups`, default all) times this factor.
        reason: kept in the record. if_revision: apply only at that revision (else Aborted).
        dry_run: change nothing; the result's current/amended hold `window` epochs (0: 100)
        with and without it. Returns an AmendResult."""
        req = amend_request(name, continue_with=continue_with, set=set, scale=scale,
                            at_epoch=at_epoch, groups=groups, reason=reason,
                            if_revision=if_revision, dry_run=dry_run, window=window)
        return AmendResult.from_proto(self._call("AmendSession", req, retry=bool(dry_run)))

    def history(self, name: str, *, from_epoch: int = 0, to_epoch: Optional[int] = None,
                page_size: int = 10000) -> History:
        """The record of session `name` for epochs from_epoch .. to_epoch (None: its current
        epoch), every page read: a History (spec, amendments, per-epoch values)."""
        req = pb.GetHistoryRequest(name=name, from_epoch=int(from_epoch), page_size=page_size)
        if to_epoch is not None:
            req.to_epoch = int(to_epoch)
        first, epochs = None, []
        # Bounded: a server that kept returning a page token would stop here.
        for _ in range(100000):
            resp = self._call("GetHistory", req, retry=True)
            if first is None:
                first = resp
            epochs.extend(_epochs(resp.epochs))
            if not resp.next_page_token:
                break
            req.page_token = resp.next_page_token
        return History(spec_json=first.spec_json,
                       amendments=[Amendment.from_proto(a) for a in first.amendments],
                       epochs=epochs, first_epoch=first.first_epoch)


def is_amendment(client, name, schedule_revision):
    """Whether `schedule_revision` (newer than a cache's) is an amendment's, after which a cache
    reads its values again, rather than an import's (another writer replaced the schedule,
    which a pipelined step reports as an error). One GetHistory, made only when it changed."""
    try:
        h = client.history(name, from_epoch=0, to_epoch=0)
    except errors.LrschedError:
        return False
    return any(a.revision == schedule_revision for a in h.amendments)


class AmendAwareCache:
    """For StepPipeline (which keeps a RevisionWatch, `_watch`): a reply with a newer
    schedule_revision that GetHistory lists as an amendment's is not another writer's change
    (an error) but a reason to read the values from the reply's epoch on again, and the watch
    makes step() do so (_catch_up) before it applies a value the amendment may change. Needs
    _client, _name, _schedule_revision, _base, _values (epoch -> groups), _cv, _local, flush()."""

    def _watch_amendments(self, client, name):
        self._watch = RevisionWatch(client, name)  # stopped by the pipeline's close()

    def _newer(self, s):
        """Whether reply `s` shows an amendment not seen yet (called outside the lock)."""
        return s.schedule_revision > self._schedule_revision and is_amendment(
            self._client, self._name, s.schedule_revision)

    def _catch_up(self):
        """step() finds a newer schedule_revision on the watch (`_watch`) than its values':
        once the steps in flight are answered (their replies may predate it), the values past
        the epoch applied are dropped, so step() reads a window again, whose reply says whether
        it was an amendment (_resync). Another writer's import is left to the replies (an
        error, as before amendments existed)."""
        rev = self._watch.revision
        if rev <= self._schedule_revision or rev == getattr(self, "_not_amendment", None):
            return
        if not is_amendment(self._client, self._name, rev):
            self._not_amendment = rev  # an import: the next reply reports it (an error)
            return
        self.flush()
        with self._cv:
            if self._watch.revision > self._schedule_revision:
                for k in [k for k in self._values if k > self._local]:
                    del self._values[k]

    def _resync(self, amended, s):
        """After an amendment (`amended`: _newer(s)), drops the values from reply `s`'s epoch on
        and counts plain steps from its revision (lock held). True if `s` predates an amendment
        already taken in (a window to ignore)."""
        if not amended or s.schedule_revision <= self._schedule_revision:
            return s.schedule_revision < self._schedule_revision
        self._schedule_revision, self._base = s.schedule_revision, s.revision - s.last_epoch
        for k in [k for k in self._values if k >= s.last_epoch]:
            del self._values[k]


def scheduler_amend(sched: Any, **kwargs: Any) -> AmendResult:
    """RemoteLRScheduler.amend(...): Client.amend on the scheduler's session (same arguments).
    Steps in flight are acknowledged first; an amendment in force at once (at the session's
    current epoch) is written into the optimizer's param groups now, as for every rank at its
    next step()."""
    from lrsched import _pipeline  # noqa: PLC0415  (lrsched.torch imports this module)
    _pipeline.flush(sched)
    result = sched.client.amend(sched.name, **kwargs)
    if not kwargs.get("dry_run"):
        session = result.session
        if sched.follow:
            sched._follow.invalidate(session.schedule_revision)
        if not sched.follow or session.last_epoch == sched.last_epoch:
            sched._adopt(session)
    return result
