"""Plain Python values the client returns instead of protobuf messages.

Each is a frozen dataclass built from one reply message (`from_proto`); floats are the exact
doubles the server sent, JSON documents are parsed with the standard `json` module (which reads
doubles with correct rounding, so nothing is lost), and the original text stays available where
a caller may want to store or forward it unchanged.
"""
import datetime
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional

__all__ = ["GroupValues", "Session", "StepResult", "EpochValues", "LRValues", "SimulateResult",
           "ExportedState", "decode_nonfinite", "encode_nonfinite"]


def _time(ts):
    """A protobuf Timestamp as an aware UTC datetime (None when unset)."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return datetime.datetime.fromtimestamp(ts.seconds, tz=datetime.timezone.utc) + \
        datetime.timedelta(microseconds=ts.nanos // 1000)


def decode_nonfinite(value):
    """JSON from the server writes non-finite floats as "inf", "-inf", "nan" (JSON has no such
    numbers); this turns them back into floats, recursively, as torch's state_dict holds them.
    No torch state_dict key holds one of these three words as a real string."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: decode_nonfinite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_nonfinite(v) for v in value]
    return value


def encode_nonfinite(value):
    """The inverse of decode_nonfinite, for sending: tuples become lists too."""
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: encode_nonfinite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_nonfinite(v) for v in value]
    return value


@dataclass(frozen=True)
class GroupValues:
    """One param group's values now: `lr`, `momentum` (SGD/RMSprop momentum or Adam-family
    betas[0]; None when the optimizer has neither) and `weight_decay` (None unless the schedule
    drives it: megatron.OptimizerParamScheduler)."""
    lr: float
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None

    @classmethod
    def from_proto(cls, m):
        return cls(lr=m.lr, momentum=m.momentum if m.HasField("momentum") else None,
                   weight_decay=m.weight_decay if m.HasField("weight_decay") else None)


def _groups(ms):
    return [GroupValues.from_proto(m) for m in ms]


@dataclass(frozen=True)
class Session:
    """A session as the server reported it. `last_epoch` is torch's scheduler.last_epoch;
    `groups` are the values a torch training loop reads from optimizer.param_groups now;
    `revision` grows by one with every mutation."""
    name: str
    spec_json: str
    labels: Dict[str, str]
    last_epoch: int
    groups: List[GroupValues]
    scheduler_type: str
    deterministic: bool
    revision: int
    create_time: Optional[datetime.datetime] = None
    update_time: Optional[datetime.datetime] = None
    # The revision of the schedule's definition (creation, last import or amendment).
    schedule_revision: int = 0

    @property
    def spec(self):
        """The spec as a dict (the server's canonical JSON, keys sorted)."""
        return json.loads(self.spec_json)

    @property
    def lrs(self):
        """The learning rates, one per param group (torch's get_last_lr())."""
        return [g.lr for g in self.groups]

    @property
    def momenta(self):
        """The momenta (or betas[0]), one per param group; None entries without one."""
        return [g.momentum for g in self.groups]

    @classmethod
    def from_proto(cls, m):
        return cls(name=m.name, spec_json=m.spec_json, labels=dict(m.labels),
                   last_epoch=m.last_epoch, groups=_groups(m.groups),
                   scheduler_type=m.scheduler_type, deterministic=m.deterministic,
                   revision=m.revision, create_time=_time(m.create_time),
                   update_time=_time(m.update_time), schedule_revision=m.schedule_revision)


@dataclass(frozen=True)
class StepResult:
    """Step's reply: the session after the call, and whether this call stepped it (False when
    `if_epoch` did not match: someone else stepped first, nothing changed)."""
    session: Session
    advanced: bool


@dataclass(frozen=True)
class EpochValues:
    """The values a session has (or will have) at torch's last_epoch `epoch`."""
    epoch: int
    groups: List[GroupValues]

    @property
    def lrs(self):
        return [g.lr for g in self.groups]


@dataclass(frozen=True)
class LRValues:
    """GetLR's reply: the values at `last_epoch + ahead` in `groups` (`epoch`: their
    last_epoch; for Megatron the num_steps after `ahead` steps of the spec's increment), and
    `window` (entry i: after i more plain step() calls) when a window was requested."""
    name: str
    last_epoch: int
    revision: int
    groups: List[GroupValues]
    window: List[EpochValues] = field(default_factory=list)
    epoch: Optional[int] = None
    schedule_revision: int = 0  # Session.schedule_revision the values were computed with

    @property
    def lrs(self):
        return [g.lr for g in self.groups]

    @classmethod
    def from_proto(cls, m):
        return cls(name=m.name, last_epoch=m.last_epoch, revision=m.revision,
                   groups=_groups(m.groups),
                   window=[EpochValues(epoch=w.epoch, groups=_groups(w.groups)) for w in m.window],
                   epoch=m.epoch, schedule_revision=m.schedule_revision)


@dataclass(frozen=True)
class SimulateResult:
    """A trace without a session, shaped like a golden trace's "expected": `lr[i][g]` is group
    g's lr before the i-th step() call; `momentum` likewise (None when the optimizer has none);
    `state_dict` torch's scheduler.state_dict() after the last step (None if a step was
    refused); `error`/`error_at_step` the refused step (None / -1 when none was);
    `weight_decay` like `momentum`, where the schedule drives it (None elsewhere)."""
    lr: List[List[float]]
    momentum: Optional[List[List[float]]]
    state_dict: Optional[dict]
    error: Optional[str]
    error_at_step: int
    weight_decay: Optional[List[List[float]]] = None

    @classmethod
    def from_proto(cls, m):
        n = m.groups
        rows = lambda flat: [list(flat[i:i + n]) for i in range(0, len(flat), n)] if n else []
        return cls(lr=rows(m.lr), momentum=rows(m.momentum) if m.has_momentum else None,
                   state_dict=json.loads(m.state_dict_json) if m.state_dict_json else None,
                   error=m.error or None, error_at_step=m.error_at_step,
                   weight_decay=rows(m.weight_decay) if m.has_weight_decay else None)


@dataclass(frozen=True)
class ExportedState:
    """A session's whole state. `state_json` is lrsched's own document (feed it to
    Client.import_state); `torch_state_dict_json` and `torch_param_groups_json` are what a torch
    checkpoint holds (scheduler.state_dict(), the optimizer's param groups), non-finite floats
    written as "inf"/"nan" strings."""
    state_json: str
    torch_state_dict_json: str
    torch_param_groups_json: str
    session: Session

    @property
    def state(self):
        return json.loads(self.state_json)

    @property
    def torch_state_dict(self):
        """torch's scheduler.state_dict(), non-finite floats as floats again."""
        return decode_nonfinite(json.loads(self.torch_state_dict_json))

    @property
    def torch_param_groups(self):
        return decode_nonfinite(json.loads(self.torch_param_groups_json))

    @classmethod
    def from_proto(cls, m):
        return cls(state_json=m.state_json, torch_state_dict_json=m.torch_state_dict_json,
                   torch_param_groups_json=m.torch_param_groups_json,
                   session=Session.from_proto(m.session))
