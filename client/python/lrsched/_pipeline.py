"""RemoteLRScheduler's use of a StepPipeline (lrsched/_step_pipeline.py): the few calls
torch.py makes, so that the scheduler's own code stays as it was for synchronous steps.

A scheduler has `_pipeline` (a StepPipeline, or None: follow=True, pipeline=False, or a
schedule without lookahead such as ReduceLROnPlateau) and, with one, `_pipeline_finalizer`.
"""
import weakref

from lrsched import errors
from lrsched._step_pipeline import StepPipeline

__all__ = ["attach", "call", "flush", "stop", "EXIT_WAIT"]

# Seconds a collected (or still open at interpreter exit) scheduler waits for its steps still in
# flight before cancelling them: steps never reach the server after that.
EXIT_WAIT = 2.0


def attach(sched, enabled, max_pending):
    """Gives `sched` a StepPipeline if it can use one: a stepping (not following) scheduler of a
    deterministic session, unless `enabled` is False."""
    sched._pipeline = None
    if not enabled or sched.follow or not sched._session.deterministic:
        return
    p = StepPipeline(sched.client, sched.name, sched._session, window=sched.window,
                     max_pending=max_pending)
    sched._pipeline = p
    # Holds the pipeline, never the scheduler. Created after the client's own finalizer, so at
    # exit it runs first, while the channel is still open.
    sched._pipeline_finalizer = weakref.finalize(sched, p.close, EXIT_WAIT)


def call(sched, fn):
    """fn() on sched's pipeline; an error that carries the session re-read from the server
    makes the scheduler adopt it (its values corrected) before it propagates."""
    try:
        return fn()
    except errors.LrschedError as e:
        if getattr(e, "session", None) is not None:
            sched._adopt(e.session)
        raise


def flush(sched):
    """Waits until every step `sched` took is acknowledged (before a synchronous call)."""
    if getattr(sched, "_pipeline", None) is not None:
        call(sched, sched._pipeline.flush)


def stop(sched, wait):
    """Ends sched's pipeline: flushes first if `wait` (raising what went wrong), then cancels
    whatever is still in flight; and a follower's watch (lrsched/_follow.py). Idempotent."""
    follow = getattr(sched, "_follow", None)
    if follow is not None:
        follow.stop()
    p = getattr(sched, "_pipeline", None)
    if p is None:
        return
    sched._pipeline_finalizer.detach()
    try:
        if wait:
            flush(sched)
    finally:
        p.close()
        sched._pipeline = None
        sched._session = p.session
        if sched._advanced is None:
            sched._advanced = p.advanced
