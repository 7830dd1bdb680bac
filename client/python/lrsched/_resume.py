"""Restarts and checkpoints for `RemoteLRScheduler`: new run or resume, exact resume from a
checkpoint older than the session, and the checks that keep a run from silently continuing
someone else's schedule (see client/python/README.md "Restarts and checkpoints").

Exact resume. A scheduler state_dict() carries RESUME_KEY: the session's name, epoch and
revision at save time, the values the param groups held, and an id for that state. Every rank's
load_state_dict() of it goes through apply(): it reads the session and, unless the session's
labels say this launch already restored this checkpoint, replaces the session with the
checkpoint's state by an ImportState conditioned on the revision it read (if_revision), recording
(launch id, checkpoint id) in the session's labels in the same write. A rank that loses the
compare re-reads and finds the labels. So N ranks loading one checkpoint make one change, even
when one rank loads after another has already stepped on, while the next launch (another
launch id) restoring the same checkpoint rewinds again.

Launch id (launch_id()): what tells one launch's ranks from the next launch's. Explicit
`launch_id=`, else $LRSCHED_LAUNCH_ID, else (torch.distributed initialized, world size > 1) a
random id rank 0 broadcasts to all ranks (a collective: every rank must reach it, at its first
load_state_dict()), else, in a single process, a random id per process. A multi-rank job without
an initialized process group and without an explicit id is refused: its ranks could not agree.
"""
import dataclasses
import hashlib
import json
import os
import sys
import uuid
import warnings

from lrsched import errors
from lrsched.values import GroupValues

__all__ = ["LABEL_LAUNCH", "LABEL_CHECKPOINT", "RESUME_KEY", "RESUME_MODES", "ResumeWarning",
           "launch_id"]

# Session labels this module writes; they are not the user's and never make specs "differ".
LABEL_PREFIX = "lrsched.resume/"
LABEL_LAUNCH = LABEL_PREFIX + "launch"
LABEL_CHECKPOINT = LABEL_PREFIX + "checkpoint"
# The state_dict() key that identifies the session's state at save time.
RESUME_KEY = "_lrsched_resume"
RESUME_MODES = ("auto", "must", "never")
# Lost compares in a row before apply() gives up: each one means another rank changed the
# session between our read and our write, which a launch's ranks do a handful of times at most.
_MAX_APPLY_ATTEMPTS = 50
# Longest schedule replayed (one Simulate) to name the epoch an optimizer's lrs belong to.
_MAX_EPOCH_SEARCH = 100000

_process_launch_id = None  # this process's launch id, once resolved
_warned = set()  # (session name, kind): warnings already given in this process


class ResumeWarning(UserWarning):
    """The optimizer and the session disagree about the epoch (a checkpoint restored into the
    model and optimizer but not into the scheduler)."""


def launch_id(explicit=None):
    """This launch's id (see the module docstring), resolved once per process."""
    global _process_launch_id
    if explicit is not None:
        return str(explicit)
    if _process_launch_id is not None:
        return _process_launch_id
    value = os.environ.get("LRSCHED_LAUNCH_ID")
    if not value:
        dist = sys.modules.get("torch.distributed")  # only if the caller imported it
        if dist is not None and dist.is_available() and dist.is_initialized() and \
                dist.get_world_size() > 1:
            box = [uuid.uuid4().hex if dist.get_rank() == 0 else None]
            dist.broadcast_object_list(box, src=0)
            value = box[0]
        elif int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            raise RuntimeError(
                "RemoteLRScheduler: this is one rank of a multi-rank job (WORLD_SIZE > 1) but "
                "torch.distributed is not initialized, so the ranks cannot agree on a launch id; "
                "call init_process_group() before load_state_dict(), or pass the same "
                "launch_id= (or $LRSCHED_LAUNCH_ID) on every rank, different for each launch")
        else:
            value = uuid.uuid4().hex  # a single process is a launch of its own
    _process_launch_id = value
    return value


def user_labels(labels):
    return {k: v for k, v in (labels or {}).items() if not k.startswith(LABEL_PREFIX)}


# -- specs: what may differ between a new optimizer and a restored one -----------------------

def _normalized_group(group, drop_momentum, drop_lr):
    g = dict(group)
    base = g.pop("initial_lr", None)
    if base is not None:
        g["lr"] = base  # a restored group's lr is the epoch's; its base lr is initial_lr
    if drop_lr:  # OneCycleLR overwrites lr and initial_lr from max_lr: the user's lr is gone
        g.pop("lr", None)
    for key in ("max_lr", "min_lr", "max_momentum", "base_momentum"):
        g.pop(key, None)  # written by OneCycleLR/CyclicLR from the scheduler's arguments
    if drop_momentum:  # cycled by the scheduler: its value is the epoch's, not the user's
        g.pop("momentum", None)
        if "betas" in g:
            g["betas"] = list(g["betas"])[1:]
    return g


def _normalized(spec, other):
    groups = spec.get("optimizer", {}).get("param_groups", [])
    others = other.get("optimizer", {}).get("param_groups", [])
    out = json.loads(json.dumps(spec))
    norm = []
    for i, g in enumerate(groups):
        o = others[i] if i < len(others) else {}
        cycled = any(k in x for x in (g, o) for k in ("max_momentum", "base_momentum"))
        norm.append(_normalized_group(g, cycled, any("max_lr" in x for x in (g, o))))
    out.setdefault("optimizer", {})["param_groups"] = norm
    return out


def same_run(spec, session_spec):
    """Whether `spec` (from the optimizer now) describes the session's run: equal, or equal but
    for what a restored optimizer changes (lr of the epoch, initial_lr, the scheduler's keys)."""
    return spec == session_spec or \
        _normalized(spec, session_spec) == _normalized(session_spec, spec)


def first_difference(a, b, path="spec"):
    """The first field where JSON values `a` and `b` differ, as "path: a vs b" (None if equal).
    Numbers compare by value (10 == 10.0), as the server compares specs."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                has = "the session" if key in b else "this run"
                return f"{path}.{key} (only {has} has it)"
            d = first_difference(a[key], b[key], f"{path}.{key}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        if len(a) != len(b):
            return f"{path}: {len(a)} entries here, {len(b)} in the session"
        return None
    if a == b and type(a) is not bool and type(b) is not bool or a is b:
        return None
    return f"{path}: {json.dumps(a)} here, {json.dumps(b)} in the session"


# -- opening a session: new run or resume ------------------------------------------------------

def open_session(sched, *, labels, attach, resume):
    """Creates or finds the session for `sched` (a RemoteLRScheduler being built) as `resume`
    says; returns (session, existed): existed is True when a run before this one stepped it."""
    client, name, spec = sched.client, sched.name, sched.spec
    if resume not in RESUME_MODES:
        raise ValueError(f"RemoteLRScheduler: resume must be one of {RESUME_MODES}, got "
                         f"{resume!r}")
    if resume == "never":
        return _open_new(sched, labels), False
    if resume == "must":
        try:
            client.get_session(name)
        except errors.NotFound:
            raise errors.NotFound(
                f"RemoteLRScheduler(resume='must'): there is no session {name!r} to resume "
                f"(resume='auto' creates it)") from None
    try:
        session = client.create_session(name, spec, labels=labels)
    except errors.AlreadyExists:
        session = client.get_session(name)
        differs = None
        if not same_run(spec, session.spec):
            differs = first_difference(spec, session.spec)
        elif user_labels(labels) != user_labels(session.labels):
            differs = first_difference(user_labels(labels), user_labels(session.labels),
                                       "labels")
        if differs and not attach:
            raise errors.AlreadyExists(
                f"session {name!r} exists with a different spec or labels; first difference: "
                f"{differs}. Pass attach=True to use the session as it is, or, for a new run, "
                f"delete it (Client.delete_session / `lrsched delete`) or choose another "
                f"name") from None
    # Revision 1: as created (by this call, or by another rank of this run): nothing to resume,
    # whatever its epoch (a spec may start at torch's last_epoch=N).
    existed = session.revision > 1
    restored = any("initial_lr" in g for g in sched.optimizer.param_groups)
    if existed and resume == "auto" and not restored and session.deterministic:
        _refuse_finished(client, session)
    return session, existed


def _open_new(sched, labels):
    """resume="never": the session must be new, i.e. created by this launch (whose other ranks
    find it carrying this launch's id)."""
    client, name = sched.client, sched.name
    launch = launch_id(sched.launch_id)
    mine = dict(labels or {})
    mine[LABEL_LAUNCH] = launch
    try:
        session = client.create_session(name, sched.spec, labels=mine)
    except errors.AlreadyExists:
        session = None
    if session is None or session.labels.get(LABEL_LAUNCH) != launch:
        if session is None:
            session = client.get_session(name)
        raise errors.AlreadyExists(
            f"RemoteLRScheduler(resume='never'): session {name!r} already exists (a "
            f"{session.scheduler_type} at epoch {session.last_epoch}, revision "
            f"{session.revision}); this new run will not continue it. Delete it "
            f"(lrsched.Client(...).delete_session({name!r}), or `lrsched delete {name}`), or "
            f"give the new run another name; resume='auto' would continue it")
    return session


def _refuse_finished(client, session):
    """A new run (fresh optimizer) attaching to a schedule torch would not step again."""
    try:
        client.get_lr(session.name, ahead=1)
    except errors.FailedPrecondition as e:
        raise errors.FailedPrecondition(
            f"RemoteLRScheduler: session {session.name!r} has finished its schedule (a "
            f"{session.scheduler_type} at epoch {session.last_epoch}: {e.details}); a new run "
            f"would fail at its first step(). Delete the session or choose another name for "
            f"the new run (resume='never' refuses any existing session)") from None


# -- checkpoints -------------------------------------------------------------------------------

def checkpoint_id(exported):
    """An id for the exported state: its revision and epoch, and a hash of the state."""
    digest = hashlib.sha256(exported.state_json.encode()).hexdigest()[:16]
    s = exported.session
    return f"r{s.revision}e{s.last_epoch}-{digest}"


def check_saved_epoch(sched, session):
    """state_dict() saves the session's state: refuse when it is not this scheduler's epoch
    (a rank behind or ahead of the session), since the checkpoint's model would be at another
    epoch than its schedule. A follower (follow=True) reads ahead by design: not checked."""
    if not sched.follow and session.last_epoch != sched.last_epoch:
        raise errors.FailedPrecondition(
            f"RemoteLRScheduler.state_dict(): this scheduler is at epoch {sched.last_epoch}, "
            f"session {session.name!r} at {session.last_epoch} (another rank stepped it); save "
            f"checkpoints from a rank right after its own step()")


def resume_record(exported):
    s = exported.session
    return {"name": s.name, "epoch": s.last_epoch, "revision": s.revision,
            "id": checkpoint_id(exported),
            "groups": [[g.lr, g.momentum] for g in s.groups]}


def apply(sched, ckpt_id, **source):
    """Puts the session into the state `source` (Client.import_state's state= or torch_spec=
    and torch_state_dict=) once per launch, whatever the number of ranks doing it; returns
    (session now, whether this call changed it)."""
    client, name = sched.client, sched.name
    launch = launch_id(sched.launch_id)
    for _ in range(_MAX_APPLY_ATTEMPTS):
        try:
            session = client.get_session(name, consistent=True)
        except errors.NotFound:
            session = None
        if session is not None and session.labels.get(LABEL_LAUNCH) == launch and \
                session.labels.get(LABEL_CHECKPOINT) == ckpt_id:
            return session, False  # another rank of this launch restored it
        labels = user_labels(session.labels if session is not None else
                             (source.get("state") or {}).get("labels"))
        labels[LABEL_LAUNCH] = launch
        labels[LABEL_CHECKPOINT] = ckpt_id
        try:
            if session is None:
                return client.import_state(name, labels=labels, **source), True
            return client.import_state(name, labels=labels, replace=True,
                                       if_revision=session.revision, **source), True
        except (errors.FailedPrecondition, errors.NotFound, errors.AlreadyExists,
                errors.Aborted):
            continue  # another rank (or writer) changed it since we read: read again
    raise errors.Aborted(f"RemoteLRScheduler: could not restore session {name!r}: it changed "
                         f"between every read and write in {_MAX_APPLY_ATTEMPTS} attempts")


def load(sched, state_dict):
    """load_state_dict() of a state_dict() carrying RESUME_KEY: the session back at the
    checkpoint's state, once per launch; returns (session, epoch, groups) for this object."""
    record = state_dict[RESUME_KEY]
    state = state_dict["_lrsched_state"]
    session, _ = apply(sched, record["id"], state=state)
    groups = [GroupValues(lr=lr, momentum=m) for lr, m in record["groups"]]
    return session, record["epoch"], groups


def rewind(sched, session, epoch):
    """resume_epoch: the session put at `epoch` of its schedule (once per launch, as
    load_state_dict), computed by replaying the spec with plain steps (two Simulates), so exact
    for a session that only ever took plain steps. Returns the session now."""
    client, name = sched.client, sched.name
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"RemoteLRScheduler: resume_epoch must be an int >= 0, got {epoch!r}")
    if session.last_epoch == epoch:
        return session
    if not session.deterministic:
        raise errors.FailedPrecondition(
            f"RemoteLRScheduler(resume_epoch={epoch}): a {session.scheduler_type} schedule "
            f"depends on its metrics and cannot be replayed; load the scheduler's state from "
            f"the checkpoint instead (sched.load_state_dict)")
    at = client.simulate(session.spec_json, epoch)  # state_dict after `epoch` steps
    values = client.simulate(session.spec_json, epoch + 1)  # rows 0..epoch: values at each
    if at.state_dict is None or values.error is not None:
        raise errors.FailedPrecondition(
            f"RemoteLRScheduler(resume_epoch={epoch}): the {session.scheduler_type} schedule "
            f"cannot reach epoch {epoch}: {at.error or values.error}")
    spec = session.spec
    groups = client.export_state(name).torch_param_groups  # with the scheduler's own keys
    for i, g in enumerate(groups):
        g["lr"] = values.lr[epoch][i]
        if values.momentum is not None:
            if "betas" in g:
                g["betas"] = [values.momentum[epoch][i], *list(g["betas"])[1:]]
            else:
                g["momentum"] = values.momentum[epoch][i]
    spec["optimizer"]["param_groups"] = groups
    digest = hashlib.sha256(session.spec_json.encode()).hexdigest()[:16]
    session, _ = apply(sched, f"epoch{epoch}-{digest}", torch_spec=spec,
                       torch_state_dict=at.state_dict)
    # Another rank of this launch may have rewound it and stepped on already: this rank is at
    # `epoch` all the same (its next step adopts the session's state, as any late rank's).
    moms = values.momentum[epoch] if values.momentum is not None else [None] * len(groups)
    return dataclasses.replace(session, last_epoch=epoch, groups=[
        GroupValues(lr=lr, momentum=m) for lr, m in zip(values.lr[epoch], moms)])


# -- the epoch the optimizer is at ------------------------------------------------------------

def epoch_of(client, session, lrs):
    """The epoch <= the session's whose lrs are `lrs` (one Simulate of the session's spec), or
    None: no such epoch, or a schedule that cannot be replayed."""
    if not session.deterministic or not 0 <= session.last_epoch < _MAX_EPOCH_SEARCH:
        return None
    try:
        trace = client.simulate(session.spec_json, session.last_epoch + 1)
    except errors.LrschedError:
        return None
    for e in range(len(trace.lr) - 1, -1, -1):
        if trace.lr[e] == list(lrs):
            return e
    return None


def warn_mismatch(sched, session, lrs):
    """Warns (once per session name and process) that the optimizer's lrs `lrs` are not the
    session's current epoch's."""
    if (session.name, "mismatch") in _warned:
        return
    _warned.add((session.name, "mismatch"))
    e = epoch_of(sched.client, session, lrs)
    at = f"those of epoch {e}" if e is not None else "those of no epoch of this schedule"
    hint = f"resume_epoch={e}" if e is not None else "resume_epoch=<the checkpoint's epoch>"
    warnings.warn(
        f"RemoteLRScheduler: session {session.name!r} is at epoch {session.last_epoch}, but the "
        f"optimizer's lrs {list(lrs)} are {at} (restored from an older checkpoint?); the "
        f"schedule continues from epoch {session.last_epoch}. To resume from the checkpoint, "
        f"load the scheduler's state too (sched.load_state_dict(ckpt['scheduler'])), or pass "
        f"{hint} to RemoteLRScheduler", ResumeWarning, stacklevel=3)


def first_step(ref, *args, **kwargs):
    """The first step() of a scheduler (`ref`, a weak reference to it) that attached to an
    existing session (installed as an instance attribute by the constructor, so the class's
    step() stays as it is): checks, once, that the optimizer is at the session's epoch, then
    steps."""
    sched = ref()
    del sched.step  # from now on, the class's step()
    pending = sched._resume_check
    sched._resume_check = None
    if pending is not None:
        session, restored_lrs = pending
        now = [g["lr"] for g in sched.optimizer.param_groups]
        if restored_lrs is not None and restored_lrs != session.lrs:
            warn_mismatch(sched, session, restored_lrs)  # restored before construction
        elif now != session.lrs:
            warn_mismatch(sched, session, now)  # restored after construction
    return type(sched).step(sched, *args, **kwargs)
