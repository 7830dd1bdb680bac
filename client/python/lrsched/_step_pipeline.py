"""`StepPipeline`: pipelined plain steps of a deterministic session, for RemoteLRScheduler.

The next values of a deterministic schedule are known in advance (GetLR's lookahead window), so
step() need not wait for its Step's round trip: it takes the next epoch's values from the window
it holds and leaves the conditional Step (if_epoch) to be sent and acknowledged in the
background.

Invariants (all under `_cv`):
- `_local` is the epoch step() has applied, `_acked` the session's epoch as the last
  acknowledgement showed it (above `_local` when another rank of the job stepped first);
  `_local - _acked` steps still have to reach the server, at most `max_pending`: step() waits
  for the answers beyond that, so with max_pending = 1 (the default) every step() finds the
  previous step's answer checked, and an error is raised by the very next step().
- At most one Step is in flight, sent with if_epoch = `_acked` by the sender thread (creating
  an RPC costs far more than step() may), and only after the previous answer was
  checked (by the sender thread itself, which then sends the next). The sender
  sleeps on `_wake` (a lock used as a binary semaphore), released by every change to act on.
- Every value applied is the server's double for that epoch (`_values`, from GetLR windows and
  Step replies), checked against every later reply for the same epoch.
- `_base` = revision - last_epoch of the session. Each plain step (whichever rank sends it)
  raises both by one, so any other change (an import, load_state_dict, step(epoch)) shows as a
  different difference: that is how "another writer changed the schedule" is detected (an
  amendment is not: AmendAwareCache).

Errors: a refused Step, a session moved where plain steps of this job cannot take it, or a reply
that disagrees with the window are raised by the next step() (or flush()) as the LrschedError of
that status naming what happened, with `.session`: the session re-read, which the scheduler
adopts (values corrected) before raising.
A Step lost to UNAVAILABLE or a deadline is sent again, synchronously, by the next step()/flush()
with the client's retries (safe: it carries if_epoch); when those give up, Unavailable.
"""
import re
import threading

import grpc

from lrsched import errors
from lrsched._amend import AmendAwareCache
from lrsched._proto import pb
from lrsched.values import LRValues, Session

__all__ = ["StepPipeline"]

# Sent again in the foreground (the Step carries if_epoch, so a repeat never steps twice);
# CANCELLED too: by a server shutting down (or by close(), after which nothing is sent).
_LOST = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
         grpc.StatusCode.CANCELLED)
# `_inflight` / `_fetching` while the sender thread makes that RPC (outside the lock).
_SENDING = object()
# The server's refusal of a lookahead through a step the schedule refuses (server/registry/query.cc).
_REFUSED_AT = re.compile(r"lookahead: step (\d+) after last_epoch (-?\d+) is refused")


class StepPipeline(AmendAwareCache):
    """Pipelined step() for one deterministic session (see the module docstring).

    step() returns (epoch, groups) to write into the optimizer, or None when the pipeline cannot
    take this step (the schedule refuses a lookahead that far): the caller then flush()es and
    steps synchronously, and the server's answer (FailedPrecondition) is the user's."""

    def __init__(self, client, name, session, *, window, max_pending):
        self._client = client
        self._name = name
        self._window = window
        self._max_pending = max_pending
        self._cv = threading.Condition()
        self._inflight = None  # _SENDING while a Step is in flight
        self._fetching = None  # _SENDING while a GetLR (a window refill) is in flight
        self._closed = False
        self._gen = 0  # bumped by reset(): replies to requests sent before it are ignored
        self._wake = threading.Lock()  # the sender thread sleeps on it (see _wake_sender)
        self._wake.acquire()
        self.reset(session)
        self._watch_amendments(client, name)  # between two replies (AmendAwareCache)
        # The RPCs go out from this thread, as blocking calls: an RPC costs ~0.1-1 ms of CPU,
        # which step() must not pay; a grpc future costs twice a blocking call (bench/README).
        threading.Thread(target=self._run, name=f"lrsched-pipeline {name}", daemon=True).start()

    # -- called by RemoteLRScheduler ---------------------------------------------------------

    def reset(self, session):
        """Starts over from `session` (after a synchronous call changed it). Needs flush()
        first: steps still pending would be forgotten."""
        with self._cv:
            self._gen += 1
            self._fetching = None
            self._session = session
            self._base = session.revision - session.last_epoch
            self._schedule_revision = session.schedule_revision
            self._local = self._acked = session.last_epoch
            self._values = {session.last_epoch: list(session.groups)}
            self._end = None  # the first epoch the schedule refuses, once a lookahead says so
            self._unfetched = None  # the epoch a background refill failed at: not again there
            self._error = None  # LrschedError for the next step()/flush()
            self._lost = None  # the failed Step's error: sent again by the next step()/flush()
            self.advanced = None  # the last acknowledged Step's `advanced`
            self._notify()  # the sender thread fetches the first window

    @property
    def session(self):
        """The session as the last acknowledgement showed it."""
        return self._session

    def step(self):
        """Takes the next epoch: returns (epoch, its values), its Step sent in the background
        (or once the one in flight is answered), or None (see the class docstring)."""
        with self._cv:
            # The common case in a training loop, under one lock: nothing went wrong, the
            # previous answer is in and the window holds the next epoch. (Each lock, check and
            # wake-up costs microseconds here; this path is what step() costs.)
            e = self._local + 1
            groups = self._values.get(e)
            if (groups is not None and self._error is None and self._lost is None
                    and not self._closed and self._local - self._acked < self._max_pending
                    and self._watch.revision <= self._schedule_revision):
                self._take(e)
                return e, groups
        return self._step_waiting()

    def _step_waiting(self):
        """step() when it has to raise, resend, read the window or wait for an answer."""
        self._catch_up()
        self._settle()
        e = self._local + 1
        with self._cv:
            groups = self._values.get(e)
        if groups is None and (groups := self._fetch(e)) is None:
            return None
        with self._cv:
            while (self._local - self._acked >= self._max_pending and self._error is None
                   and self._lost is None and not self._closed):
                self._cv.wait(1.0)  # woken by the acknowledgement (an RPC always ends)
        self._settle()
        with self._cv:
            self._take(e)
        return e, groups

    def _take(self, e):
        """Makes `e` the epoch step() has applied, for the sender thread to send its Step (lock
        held). Wakes the sender only if no Step is in flight: the answer to the one in flight
        wakes it anyway (_on_step), and a wake-up is most of what step() costs. Only the caller
        waits on _cv, so nobody else needs a notify."""
        self._local = e
        if self._local <= self._acked:
            self.advanced = False  # another rank's step already took the session here
        if self._inflight is None:
            self._wake_sender()

    def flush(self):
        """Returns once every step taken is acknowledged; raises what went wrong."""
        while True:
            self._settle()
            with self._cv:
                if self._local <= self._acked and self._inflight is None:
                    return
                if self._error is None and self._lost is None and not self._closed:
                    self._cv.wait(1.0)
                elif self._closed:
                    return

    def close(self, wait=None):
        """Stops the pipeline: waits up to `wait` seconds for the Step in flight and the steps
        still to send (never retrying a lost one). Nothing is sent after it; an RPC in flight
        ends within the client's timeout, or when the channel closes (which cancels it)."""
        with self._cv:
            if wait:
                self._cv.wait_for(lambda: (self._inflight is None and self._local <= self._acked)
                                  or self._error or self._lost, timeout=wait)
            self._closed = True
            self._notify()
        self._watch.stop()

    # -- internals ---------------------------------------------------------------------------

    def _settle(self):
        """Raises a pending error (after re-reading the session for the caller to adopt) and
        sends a lost Step again, synchronously, with the client's retries."""
        with self._cv:
            err, lost = self._error, self._lost
        if err is not None:
            self._fail(err)
        if lost is None:
            return
        while True:
            with self._cv:
                if self._acked >= self._local or self._closed:
                    self._lost = None
                    return
                acked = self._acked
            try:
                r = self._client.step(self._name, if_epoch=acked)
            except errors.Unavailable as e:
                raise errors.Unavailable(
                    f"pipelined step of session {self._name!r} from epoch {acked} (this rank is "
                    f"at {self._local}) could not be delivered: {e.details}") from None
            except errors.LrschedError as e:
                self._fail(self._refused(e, acked))
            amended = self._newer(r.session)
            with self._cv:
                err = self._check(acked, r.session, r.advanced, amended)
            if err is not None:
                self._fail(err)

    def _fail(self, err):
        """Raises `err` with `.session`: the session re-read (None if that fails too), once
        the Step in flight has ended; the scheduler adopts it (reset())."""
        with self._cv:
            self._cv.wait_for(lambda: self._inflight is None, timeout=self._client.timeout)
        try:
            session = self._client.get_session(self._name)
        except errors.LrschedError:
            session = None
        err.session = session
        raise err

    def _refused(self, e, acked):
        return type(e)(f"pipelined step of session {self._name!r} from epoch {acked} was "
                       f"refused: {e.details}")

    def _run(self):
        """The sender thread: sends the next Step when one is due and none is in flight (after
        the previous answer was checked), and refills the window when half of it is used."""
        while True:
            with self._cv:
                if self._closed:
                    return
                send = (self._inflight is None and self._local > self._acked
                        and self._error is None and self._lost is None)
                refill = (self._fetching is None and self._end is None
                          and self._error is None and self._local != self._unfetched
                          and max(self._values) - self._local <= self._window // 2)
                gen, acked = self._gen, self._acked
                if send:
                    self._inflight = _SENDING
                if refill:
                    self._fetching = _SENDING
                    req = pb.GetLRRequest(name=self._name,
                                          window=self._window_for(self._local + 1))
            if not (send or refill):
                # Outside the lock: a wake-up between the check and here leaves _wake released,
                # so acquire() returns at once and the loop checks again.
                self._wake.acquire()
                continue
            if send:
                resp, err = self._call("Step", pb.StepRequest(name=self._name, if_epoch=acked))
                self._on_step(resp, err, acked, gen)
            if refill:
                resp, err = self._call("GetLR", req)
                self._on_window(resp, err, gen)

    def _notify(self):
        """Wakes whoever waits for news (lock held): step()/flush()/close() on the condition,
        the sender thread on _wake."""
        self._cv.notify_all()
        self._wake_sender()

    def _wake_sender(self):
        """Wakes the sender thread. _wake is a binary semaphore, not a Condition: releasing a lock
        is Python's cheapest wake-up, and wake-ups that come together collapse into one. It still
        costs step() most of its time on a VM (bench/README.md: polling was measured, rejected)."""
        try:
            self._wake.release()
        except RuntimeError:  # already released: the sender has not looked yet
            pass

    def _call(self, method, req):
        """The RPC `method`, made by the sender thread and blocking it (outside the lock):
        (response, None), or (None, the grpc.RpcError, or the ValueError of a closed channel)."""
        try:
            return getattr(self._client._stub, method)(
                req, timeout=self._client.timeout, metadata=self._client._metadata), None
        except (grpc.RpcError, ValueError) as e:
            return None, e

    def _on_step(self, resp, err, acked, gen):
        """Takes a Step's answer (or its failure) in: for step() waiting on it, and the sender
        thread for the next Step."""
        amended = err is None and self._newer(resp.session)
        with self._cv:
            self._inflight = None
            if gen != self._gen:  # sent before a reset(): its answer is not this pipeline's
                self._notify()
                return
            if isinstance(err, ValueError):  # the channel is closed (close() ends the thread)
                self._lost = errors.Unavailable(f"closed: {err}")
            elif err is not None:
                e = errors.from_rpc_error(err)
                if err.code() in _LOST:
                    self._lost = e
                else:
                    self._error = self._refused(e, acked)
            elif self._error is None:
                self._error = self._check(acked, Session.from_proto(resp.session), resp.advanced,
                                          amended)
            self._notify()

    def _check(self, acked, s, advanced, amended=False):
        """Takes a Step's answer (sent from `acked`) in; returns its error or None (lock held)."""
        self._resync(amended, s)
        what = f"session {self._name!r}: the pipelined step from epoch {acked} found"
        if s.revision - s.last_epoch != self._base:
            return errors.Aborted(
                f"{what} revision {s.revision} at epoch {s.last_epoch}: the schedule was changed "
                f"by another writer (not a plain step), so the values this rank applied since "
                f"epoch {acked} may be wrong")
        if not advanced and not acked < s.last_epoch <= self._local + 1:
            return errors.Aborted(
                f"{what} the session at epoch {s.last_epoch} while this rank has taken "
                f"{self._local} steps: another writer stepped it (lost compare on if_epoch)")
        want = self._values.get(s.last_epoch)
        if want is not None and want != list(s.groups):
            return errors.Aborted(
                f"{what} values {[g.lr for g in s.groups]} at epoch {s.last_epoch}, the lookahead "
                f"said {[g.lr for g in want]}: the schedule was changed by another writer")
        self._values.setdefault(s.last_epoch, list(s.groups))
        if s.last_epoch > self._acked:
            self._acked = s.last_epoch
            self._session = s
            for old in [k for k in self._values if k < min(self._acked, self._local)]:
                del self._values[old]
        self.advanced = advanced
        return None

    def _window_for(self, e):
        """The GetLR window that reaches `window` epochs past `e` from the session's epoch."""
        return max(1, min(10000, e + self._window - self._acked))

    def _on_window(self, resp, err, gen):
        amended = err is None and self._newer(got := LRValues.from_proto(resp))
        with self._cv:
            self._fetching = None
            if gen == self._gen:
                if err is None:
                    self._take_window(got, amended)
                else:
                    self._unfetched = self._local  # lost: step() reads it when it needs it
                    if isinstance(err, grpc.RpcError):
                        self._refusal(errors.from_rpc_error(err), max(self._values) + 1)
            self._notify()

    def _take_window(self, got, amended=False):
        """Merges a GetLR reply into `_values` (lock held)."""
        if self._resync(amended, got):  # computed before an amendment already taken in
            return
        if got.revision - got.last_epoch != self._base:
            self._error = errors.Aborted(
                f"session {self._name!r}: lookahead found revision {got.revision} at epoch "
                f"{got.last_epoch}: the schedule was changed by another writer")
            return
        for w in got.window:
            have = self._values.get(w.epoch)
            if have is not None and have != list(w.groups):
                self._error = errors.Aborted(
                    f"session {self._name!r}: lookahead values at epoch {w.epoch} changed: the "
                    f"schedule was changed by another writer")
                return
            self._values[w.epoch] = list(w.groups)

    def _refusal(self, err, e):
        """A lookahead to epoch `e` failed (lock held). If the schedule refuses a step on the
        way, remembers the first epoch it refuses (`e` when the message does not say) and
        returns the window that stops short of it, counted from the session's epoch; else 0."""
        if not isinstance(err, errors.FailedPrecondition):
            return 0  # lost: step() reads the window itself when it needs it
        m = _REFUSED_AT.search(err.details)
        if m is None:
            self._end = e
            return 0
        i, last = int(m.group(1)), int(m.group(2))
        self._end = last + i
        return i

    def _fetch(self, e):
        """The values for epoch `e` when the window does not hold them: waits for a refill in
        flight, else reads a window now. None if the schedule refuses a step before `e` (the
        caller steps synchronously, and the server says what it refuses)."""
        with self._cv:
            self._cv.wait_for(lambda: self._fetching is None, timeout=self._client.timeout)
            n = self._window_for(e)
        for _ in range(3):  # a refusal says where; the session may move between two reads
            if e in self._values:
                return self._values[e]
            if self._end is not None and e >= self._end:
                return None
            try:
                got = self._client.get_lr(self._name, window=n)
            except errors.FailedPrecondition as err:
                with self._cv:
                    n = self._refusal(err, e)
                if n == 0:
                    return None
                continue
            amended = self._newer(got)
            with self._cv:
                self._take_window(got, amended)
                err = self._error
            if err is not None:
                self._fail(err)
        return self._values.get(e)
