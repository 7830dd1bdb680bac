"""A follower's step() for RemoteLRScheduler(follow=True), and `RevisionWatch`, which tells it
when the schedule was amended.

A follower serves the values of a lookahead window (one GetLR per `window` steps). An amendment
(AmendSession) changes the values of epochs such a window may hold, so every window is tagged
with the schedule_revision it was computed with, and it is dropped (and read again) as soon as
a newer schedule_revision is known: from any reply, or from the Watch stream the follower keeps
open in a daemon thread (RevisionWatch), which reports an amendment the moment it lands. So a
window computed before an amendment is never served for an epoch the amendment applies to,
save during the Watch's delivery delay (milliseconds).

Invariant: `_window` is used only while no schedule_revision newer than `_window_revision` is
known. The Follower holds no reference to its scheduler (no cycle: the scheduler stays
collectable); the watch thread is stopped by stop(), or when the Follower is collected.
"""
import threading
import time
import weakref

import grpc

from lrsched import errors
from lrsched._proto import pb

__all__ = ["Follower", "RevisionWatch"]


class RevisionWatch:
    """The newest schedule_revision of a session, kept by a Watch stream in a daemon thread
    (resubscribed with backoff when the stream breaks; ends when the session is deleted, the
    channel closes, or stop())."""

    def __init__(self, client, name):
        self.revision = 0  # written by the thread only; reads of an int are atomic
        self._lock = threading.Lock()
        self._call = None
        self._stopped = False
        args = (client._stub, client._metadata, name)
        threading.Thread(target=self._run, args=args, name=f"lrsched-watch {name}",
                         daemon=True).start()

    def stop(self):
        with self._lock:
            self._stopped = True
            if self._call is not None:
                self._call.cancel()

    def _run(self, stub, metadata, name):
        backoff = 0.1
        while True:
            with self._lock:
                if self._stopped:
                    return
                try:
                    self._call = call = stub.Watch(
                        pb.WatchRequest(name=name, definition_changes_only=True),
                        metadata=metadata)
                except Exception:  # noqa: BLE001  (a closed channel): best effort, replies
                    return  # still show a new schedule_revision
            try:
                for s in call:
                    self.revision = max(self.revision, s.schedule_revision)
                    backoff = 0.1
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    return  # deleted: the next GetLR says so
            except ValueError:
                return
            with self._lock:
                if self._stopped:
                    return
            time.sleep(backoff)
            backoff = min(2.0, backoff * 2)


class Follower:
    """The lookahead window of one following RemoteLRScheduler (see the module docstring)."""

    def __init__(self, watch=True):
        self.watch_enabled = watch
        self._watch = None
        self._seen = 0  # the newest schedule_revision seen in a reply
        self._window = []  # EpochValues for consecutive epochs (a GetLR's window)
        self._window_revision = 0

    def known_revision(self):
        w = self._watch
        return max(self._seen, w.revision if w is not None else 0)

    def invalidate(self, schedule_revision):
        """A reply showed `schedule_revision`: windows computed before it are dropped."""
        self._seen = max(self._seen, schedule_revision)

    def reset(self):
        self._window = []

    def stop(self):
        if self._watch is not None:
            self._watch.stop()

    def step(self, sched, epoch):
        """step() of follower `sched`: no Step RPC; the next epoch's values from the window."""
        if epoch is not None:
            raise ValueError("RemoteLRScheduler(follow=True): step(epoch) is not supported; a "
                             "follower follows plain step() calls (use refresh() to re-read)")
        client, name = sched.client, sched.name
        if not sched._session.deterministic:
            # No lookahead: the session's current values, whoever steps it.
            values = client.get_lr(name)
            self.invalidate(values.schedule_revision)
            sched._set_values(values.last_epoch, values.groups)
            return
        if self._watch is None and self.watch_enabled:
            self._watch = RevisionWatch(client, name)
            weakref.finalize(self, self._watch.stop)
        e = sched.last_epoch + 1
        groups = self._from_window(e)
        if groups is None:
            # The window starts at the session's current epoch; a follower ahead of the
            # stepping rank reads the values ahead of it (exact for plain steps).
            fetched = client.get_lr(name, window=sched.window)
            self.invalidate(fetched.schedule_revision)
            self._window, self._window_revision = fetched.window, fetched.schedule_revision
            groups = self._from_window(e)
            if groups is None and e > fetched.last_epoch:
                # More than `window` epochs ahead (nobody steps the session): the window
                # cannot shift, so read this epoch alone.
                groups = client.get_lr(name, ahead=e - fetched.last_epoch).groups
            elif groups is None:
                # Behind the session (e.g. its window was dropped after an amendment while the
                # stepping rank went on): past epochs are final, and the record has them.
                past = client.history(name, from_epoch=e, to_epoch=e).epochs
                if not past or past[0].epoch != e:
                    raise errors.FailedPrecondition(
                        f"RemoteLRScheduler(follow=True): session {name!r} is at epoch "
                        f"{fetched.last_epoch}, this follower behind it at {e}, which the "
                        f"session's record does not hold (refresh() to rejoin)")
                groups = past[0].groups
        sched._set_values(e, groups)

    def _from_window(self, e):
        """The groups for epoch `e` from the window, or None if it is not there (or stale)."""
        if self._window and self.known_revision() > self._window_revision:
            self._window = []  # computed before an amendment: never served
        if not self._window:
            return None
        i = e - self._window[0].epoch
        return self._window[i].groups if 0 <= i < len(self._window) else None
