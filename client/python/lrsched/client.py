"""`Client`: the lrsched.v1.LrScheduler service with Python names, values and exceptions.

Every method is one RPC (list_sessions and watch: a sequence of them / a stream) and returns the
plain values of `lrsched.values` (dataclasses, never protobuf messages). A failed RPC raises the
`lrsched.errors` class for its status code.

Retries: UNAVAILABLE (server down, restarting, unreachable) is retried with jittered exponential
backoff for at most `retry_timeout` seconds in all (then Unavailable says how long it waited),
but only for calls that cannot apply twice: the reads (get_session, list_sessions,
get_lr, simulate, export_state), create_session (a repeated create with the same spec returns
the existing session, by contract) and step *with* `if_epoch` (a repeat finds the epoch moved
and changes nothing). A plain step, delete_session and import_state are sent once: an
UNAVAILABLE reply may come after the server applied them.

Exit: a channel that retried leaves gRPC threads behind, and a channel still open when the
interpreter shuts down can block its exit forever (grpc's channel __del__ waits on them). So
every channel the client opens is closed by close(), by the garbage collection of the client,
and at interpreter exit, whichever comes first (weakref.finalize), never left to grpc's __del__.
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
import weakref
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple, Union

import grpc

from lrsched import errors
from lrsched._amend import AmendCalls
from lrsched._proto import pb, pb_grpc
from lrsched._types import Labels, Spec
from lrsched.values import (ExportedState, LRValues, Session, SimulateResult, StepResult,
                            encode_nonfinite)

__all__ = ["Client", "DEFAULT_TARGET", "DEFAULT_RETRY_TIMEOUT"]

DEFAULT_TARGET = "127.0.0.1:50051"
# Seconds a retry-safe call keeps retrying UNAVAILABLE before it raises (README: "Retries").
# About what the former 8 retries added up to: a restarting server is usually back by then.
DEFAULT_RETRY_TIMEOUT = 10.0

# gRPC reconnects with exponential backoff from 1 s up to 120 s by default; a restarted server
# would then stay unreachable long after it is back. Keep the channel's own backoff short: the
# client's retry loop below does the pacing. (Not grpc.min_reconnect_backoff_ms: it is also the
# connect-and-handshake timeout, which must stay generous for TLS over slow links.)
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Session documents and Simulate traces can be large (the server allows up to its limits).
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def _close_channel(channel):
    """Closes a channel this client opened, once gRPC's connectivity thread (started by the
    subscription in Client._pause) has stopped: that thread ends within 0.2 s of the last
    unsubscribe, and a channel closed under it makes the thread die with a traceback on stderr.
    (`_connectivity_state.polling` is grpc's own flag for that thread; without it, close now.)"""
    state = getattr(channel, "_connectivity_state", None)
    deadline = time.monotonic() + 1.0
    while getattr(state, "polling", False) and time.monotonic() < deadline:
        time.sleep(0.01)
    channel.close()


def _spec_text(spec):
    """A spec given as a dict (or JSON text) as the JSON text the API carries. Floats print in
    Python's shortest round-trip form, so the server reads exactly the same doubles."""
    if isinstance(spec, str):
        return spec
    # allow_nan=False: JSON has no NaN/Infinity; refuse here rather than send invalid JSON.
    return json.dumps(spec, allow_nan=False, sort_keys=True)


class Client(AmendCalls):
    """A connection to an lrsched server.

    target: "host:port" (default 127.0.0.1:50051). timeout: seconds per RPC attempt (None: no
    deadline). credentials: grpc.ChannelCredentials for TLS (e.g. grpc.ssl_channel_credentials());
    without them the channel is insecure. token: sent as `authorization: Bearer <token>` metadata
    on every call (for an authenticating proxy in front of the server). retry_timeout: seconds a
    retry-safe call keeps retrying after UNAVAILABLE, counted from its first attempt (0: never
    retry); once they have passed it raises Unavailable naming the time it waited. A retried
    attempt's deadline is cut to what is left of it, so such a call returns or raises within
    timeout + retry_timeout. retries: at most this many retries as well (None: as many as
    retry_timeout allows; 0: never). Between attempts it waits backoff, 2*backoff, ... (at most
    max_backoff, with jitter). channel: an existing grpc.Channel to use instead (target and
    credentials are then ignored; the client does not close it, so the caller must).

    amend() and history() (lrsched/_amend.py) change a running schedule and read its record.

    Thread-safe (gRPC channels are). Use as a context manager or call close(); a client that is
    neither closed nor collected is closed at interpreter exit.
    """

    def __init__(self, target: str = DEFAULT_TARGET, *, timeout: Optional[float] = 10.0,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 token: Optional[str] = None, retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
                 retries: Optional[int] = None, backoff: float = 0.1, max_backoff: float = 4.0,
                 channel: Optional[grpc.Channel] = None,
                 options: Sequence[Tuple[str, Any]] = ()) -> None:
        if retries is not None and retries < 0:
            raise ValueError(f"retries must not be negative, got {retries}")
        if not isinstance(retry_timeout, (int, float)) or not 0 <= retry_timeout < math.inf:
            raise ValueError(f"retry_timeout must be a finite number of seconds >= 0, got "
                             f"{retry_timeout!r}")
        self.target = target
        self.timeout = timeout
        self.retry_timeout = float(retry_timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._finalizer = None
        if channel is None:
            opts = _CHANNEL_OPTIONS + list(options)
            if credentials is not None:
                channel = grpc.secure_channel(target, credentials, options=opts)
            else:
                channel = grpc.insecure_channel(target, options=opts)
            # Closes the channel when this client is collected or at interpreter exit (weakref
            # runs its finalizers from an atexit hook, while gRPC's threads still run), unless
            # close() did first. It holds the channel, never the client.
            self._finalizer = weakref.finalize(self, _close_channel, channel)
        self._channel = channel
        self._stub = pb_grpc.LrSchedulerStub(channel)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the channel (if the client opened it). Idempotent."""
        if self._finalizer is not None:
            self._finalizer()  # closes the channel once, then never again
        self._channel = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"lrsched.Client({self.target!r})"

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, method, request, *, retry):
        """Calls the unary `method`, retrying UNAVAILABLE when `retry` (for retry_timeout
        seconds, or `retries` times); raises LrschedError."""
        fn = getattr(self._stub, method)
        start = time.monotonic()
        attempt = 0
        timeout = self.timeout
        while True:
            try:
                return fn(request, timeout=timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                err = errors.from_rpc_error(e)
                capped = timeout is not None and (self.timeout is None or timeout < self.timeout)
                if not retry or not (isinstance(err, errors.Unavailable) or (
                        capped and isinstance(err, errors.DeadlineExceeded))):
                    raise err from None
                waited = time.monotonic() - start
                left = self.retry_timeout - waited
                if left <= 0 or (self.retries is not None and attempt >= self.retries):
                    raise errors.Unavailable(
                        f"{err.details} (lrsched client: gave up on {method} after "
                        f"{attempt + 1} attempt{'s' if attempt else ''} in {waited:.1f} s; "
                        f"retry_timeout={self.retry_timeout:g} s)") from None
            # Jitter spreads out the retries of many ranks hitting one restarting server.
            delay = min(self.max_backoff, self.backoff * (2 ** attempt))
            self._pause(min(left, delay * random.uniform(0.5, 1.0)))
            attempt += 1
            # The next attempt ends by the retry deadline (a black-holed address would
            # otherwise hold each attempt for the whole per-call timeout).
            left = max(0.05, self.retry_timeout - (time.monotonic() - start))
            timeout = left if self.timeout is None else min(self.timeout, left)

    def _pause(self, seconds):
        """Waits `seconds` before a retry while keeping the channel reconnecting, and returns
        early once the channel becomes READY again after having been down.

        Why not time.sleep: gRPC's Python channel does its network I/O only while someone polls
        it. Between fail-fast calls nobody does, so a reconnect to a restarted server would
        wait for gRPC's 5 s backup poller. A connectivity subscription polls the channel (and
        asks it to connect) for as long as it is subscribed."""
        ready = threading.Event()
        was_down = False

        def on_state(state):
            nonlocal was_down
            if state is grpc.ChannelConnectivity.READY:
                # Ready all along means the server itself said UNAVAILABLE (shutting down,
                # storage trouble): then wait the whole backoff rather than retry at once.
                if was_down:
                    ready.set()
            else:
                was_down = True

        self._channel.subscribe(on_state, try_to_connect=True)
        try:
            ready.wait(seconds)
        finally:
            self._channel.unsubscribe(on_state)

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, name: str, spec: Spec, *,
                       labels: Optional[Labels] = None) -> Session:
        """Creates session `name` from `spec` (a dict in torch's vocabulary, or its JSON text)
        and returns it. The same name with the same spec and labels returns the existing
        session (so this is retried safely); a different spec raises AlreadyExists, a spec
        torch (or lrsched) refuses raises InvalidArgument naming the field."""
        req = pb.CreateSessionRequest(name=name, spec_json=_spec_text(spec), labels=labels or {})
        return Session.from_proto(self._call("CreateSession", req, retry=True))

    def get_session(self, name: str, *, consistent: bool = False) -> Session:
        """The session now; NotFound if there is none of that name. `consistent` (here and in
        list_sessions, get_lr): with an etcd-backed server, read etcd itself rather than the
        replica's memory, which may lag another replica's commit briefly; no difference on
        SQLite."""
        req = pb.GetSessionRequest(name=name, consistent=consistent)
        return Session.from_proto(self._call("GetSession", req, retry=True))

    def list_sessions(self, *, name_prefix: str = "", labels: Optional[Labels] = None,
                      page_size: int = 0, consistent: bool = False) -> Iterator[Session]:
        """Iterates over all sessions (in name order) whose name starts with `name_prefix` and
        that carry all `labels`, fetching pages of `page_size` (0: the server's default) as
        the iteration proceeds."""
        token = ""
        while True:
            req = pb.ListSessionsRequest(name_prefix=name_prefix, labels=labels or {},
                                         page_size=page_size, page_token=token,
                                         consistent=consistent)
            resp = self._call("ListSessions", req, retry=True)
            for s in resp.sessions:
                yield Session.from_proto(s)
            token = resp.next_page_token
            if not token:
                return

    def delete_session(self, name: str, *, if_revision: Optional[int] = None) -> None:
        """Deletes the session; with `if_revision`, only if it is still at that revision
        (FailedPrecondition otherwise). Not retried (a repeat would report NotFound)."""
        req = pb.DeleteSessionRequest(name=name)
        if if_revision is not None:
            req.if_revision = if_revision
        self._call("DeleteSession", req, retry=False)

    # -- stepping and reading ----------------------------------------------------------------

    def step(self, name: str, *, metric: Optional[float] = None, epoch: Optional[float] = None,
             if_epoch: Optional[int] = None, increment: Optional[int] = None) -> StepResult:
        """One scheduler.step() (`metric`: ReduceLROnPlateau's step(metric); `epoch`:
        step(epoch); `increment`: megatron.OptimizerParamScheduler's step(increment), a
        positive int, absent: the spec's default). With `if_epoch`, steps only if the session's last_epoch equals it, else
        changes nothing and returns advanced=False with the current state; such a step is
        retried on UNAVAILABLE, a step without it is not. A step torch refuses raises
        FailedPrecondition and leaves the session as it was."""
        req = pb.StepRequest(name=name)
        if metric is not None:
            req.metric = float(metric)
        if epoch is not None:
            req.epoch = float(epoch)
        if if_epoch is not None:
            req.if_epoch = int(if_epoch)
        if increment is not None:
            req.increment = int(increment)
        resp = self._call("Step", req, retry=if_epoch is not None)
        return StepResult(session=Session.from_proto(resp.session), advanced=resp.advanced)

    def get_lr(self, name: str, *, ahead: int = 0, window: int = 0,
               consistent: bool = False) -> LRValues:
        """The values now, or `ahead` plain steps from now, plus (window > 0) the values for
        the next `window` epochs, without changing the session. Lookahead on a
        ReduceLROnPlateau session raises FailedPrecondition."""
        req = pb.GetLRRequest(name=name, ahead=ahead, window=window, consistent=consistent)
        return LRValues.from_proto(self._call("GetLR", req, retry=True))

    def watch(self, name: str, *, timeout: Optional[float] = None) -> Iterator[Session]:
        """Yields the session now and again after every change, until the session is deleted
        (raises NotFound), the server shuts down (raises Unavailable), `timeout` seconds pass
        (raises DeadlineExceeded), or the caller stops iterating (closing the generator cancels
        the stream). Not retried: a caller that wants to follow a restart watches again."""
        call = self._stub.Watch(pb.WatchRequest(name=name), timeout=timeout,
                                metadata=self._metadata)
        try:
            for s in call:
                yield Session.from_proto(s)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        finally:
            call.cancel()

    def simulate(self, spec: Spec, steps: int, *, metrics: Optional[Sequence[float]] = None,
                 epochs: Optional[Sequence[float]] = None) -> SimulateResult:
        """Traces `spec` for `steps` step() calls without creating a session (metrics/epochs:
        what to pass to each step). A configuration torch refuses raises InvalidArgument; a
        step torch refuses ends the trace and is reported in the result."""
        req = pb.SimulateRequest(spec_json=_spec_text(spec), steps=steps,
                                 metrics=[float(m) for m in metrics or ()],
                                 epochs=[float(e) for e in epochs or ()])
        return SimulateResult.from_proto(self._call("Simulate", req, retry=True))

    # -- state -------------------------------------------------------------------------------

    def export_state(self, name: str) -> ExportedState:
        """The session's whole state (lrsched's document, plus torch's state_dict and param
        groups for a torch checkpoint)."""
        req = pb.ExportStateRequest(name=name)
        return ExportedState.from_proto(self._call("ExportState", req, retry=True))

    def import_state(self, name: str, *, state: Union[str, Mapping[str, Any], None] = None,
                     torch_spec: Optional[Spec] = None,
                     torch_state_dict: Union[str, Mapping[str, Any], None] = None,
                     replace: bool = False, labels: Optional[Labels] = None,
                     if_revision: Optional[int] = None) -> Session:
        """Creates (replace=True: or overwrites) session `name` from either `state` (an
        export's state_json, as text or a dict) or a torch checkpoint: `torch_spec` (the spec,
        its optimizer.param_groups the checkpoint's) with `torch_state_dict` (torch's
        scheduler.state_dict(), a dict or JSON text; non-finite floats are allowed in a dict).
        if_revision (with replace): overwrite only the session at that revision
        (FailedPrecondition if it moved on, NotFound if it is gone). Not retried."""
        req = pb.ImportStateRequest(name=name, replace=replace, labels=labels or {})
        if if_revision is not None:
            req.if_revision = int(if_revision)
        if (state is None) == (torch_spec is None):
            raise ValueError("import_state: give exactly one of state or torch_spec")
        if state is not None:
            req.state_json = state if isinstance(state, str) else json.dumps(state,
                                                                             allow_nan=False)
        else:
            if torch_state_dict is None:
                raise ValueError("import_state: torch_spec needs torch_state_dict")
            sd = torch_state_dict if isinstance(torch_state_dict, str) else json.dumps(
                encode_nonfinite(torch_state_dict), allow_nan=False)
            req.torch.spec_json = _spec_text(torch_spec)
            req.torch.state_dict_json = sd
        return Session.from_proto(self._call("ImportState", req, retry=False))
