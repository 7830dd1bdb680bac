// Copyright lrsched authors.
//
// Registry::Step, blocking (any store; with a shared store it re-reads and retries on a lost
// compare) and asynchronous (TryStepAsync: a store that commits in the background, so the
// calling thread never waits for the disk). Both compute the step the same way (BeginStep)
// and install the committed result the same way (InstallCommitted).
#include <utility>

#include "absl/time/clock.h"
#include "server/registry/registry.h"

namespace lrsched {

Registry::PendingStep Registry::BeginStep(const std::string& name, const Entry& e,
                                          const StepRequest& request,
                                          std::optional<int64_t> if_epoch, bool from_memory) {
  PendingStep p;
  const absl::Status maybe_stale = absl::AbortedError("memory may be stale: re-read");
  if (!e.live) {
    p.answer = from_memory ? maybe_stale : NotFound(name);
    return p;
  }
  if (if_epoch && *if_epoch != e.schedule->last_epoch()) {
    if (from_memory) {
      p.answer = maybe_stale;
    } else {
      StepOutcome out;
      out.session = SnapshotLocked(e);
      p.answer = std::move(out);
    }
    return p;
  }
  // Step a copy: the live schedule changes only once the new state is durable.
  p.next = e.schedule->Clone();
  absl::Status s = p.next->Step(request);
  if (!s.ok()) {
    // Stale memory could refuse what the current state allows (another replica imported a
    // different schedule under this name): decide on a fresh read.
    p.answer = from_memory ? maybe_stale : absl::FailedPreconditionError(std::string(s.message()));
    return p;
  }
  p.meta = e.meta;
  p.meta.revision += 1;
  p.meta.update_time = absl::Now();
  return p;
}

absl::StatusOr<StepOutcome> Registry::Step(const std::string& name, const StepRequest& request,
                                           std::optional<int64_t> if_epoch) {
  // With a shared store another replica may have stepped since we last looked: re-read, step,
  // and on a lost compare-and-swap (ABORTED) re-read and decide again (with if_epoch that
  // answers advanced = false with the current state). Bounded: contention gives up ABORTED.
  // With a change feed memory is usually current, so the first attempt skips the re-read; the
  // commit's compare catches a stale memory, and an answer that stale memory could have
  // caused (not found, if_epoch mismatch) is re-read and decided again before it is given.
  constexpr int kAttempts = 16;
  const bool shared = store_->shared();
  const bool memory_first = shared && FeedActive();
  absl::StatusOr<StepOutcome> out = absl::AbortedError("not attempted");
  for (int i = 0; i < (shared ? kAttempts : 1); ++i) {
    const bool from_memory = memory_first && i == 0;
    if (!from_memory) {
      if (absl::Status synced = Sync(name); !synced.ok()) return synced;
    }
    out = StepOnce(name, request, if_epoch, from_memory);
    if (out.status().code() != absl::StatusCode::kAborted) break;
  }
  return out;
}

absl::StatusOr<StepOutcome> Registry::StepOnce(const std::string& name, const StepRequest& request,
                                               std::optional<int64_t> if_epoch, bool from_memory) {
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) {
    if (from_memory) return absl::AbortedError("memory may be stale: re-read");
    return Missing(name);
  }
  // write_mu alone: the fields can be read (they change only with it held), and readers of
  // this session are not held up by the commit below.
  HandoffLock::Hold w(&e->write_mu);
  PendingStep p = BeginStep(name, *e, request, if_epoch, from_memory);
  if (p.answer) return *std::move(p.answer);
  auto session = CommitPut(*e, std::move(p.meta), std::move(p.next));
  if (!session.ok()) return session.status();
  StepOutcome out;
  out.session = *std::move(session);
  out.advanced = true;
  return out;
}

Registry::StepVerdict Registry::TryStepAsync(const std::string& name, const StepRequest& request,
                                             std::optional<int64_t> if_epoch, int64_t heavy_cost,
                                             StepCallback done) {
  // One lookup serves the routing (heavy or not) and the step.
  std::shared_ptr<Entry> e = Find(name);
  if (e != nullptr) {
    // A hint as memory holds it (no store read), decided before any work, whatever the store.
    absl::MutexLock l(&e->mu);
    if (e->live && e->schedule->step_cost() > heavy_cost) return StepVerdict::kHeavy;
  }
  if (!store_->async_commit()) return StepVerdict::kBlocking;
  // A shared store: only the first of Step's attempts, from memory the feed keeps fresh,
  // can start without blocking; whatever needs a re-read goes to the blocking path.
  const bool shared = store_->shared();
  if (shared && !FeedActive()) return StepVerdict::kBlocking;
  if (e == nullptr) {
    if (shared) return StepVerdict::kBlocking;  // perhaps created on another replica: re-read
    done(StepVerdict::kAnswered, Missing(name));
    return StepVerdict::kAnswered;
  }
  // Another mutation of this session holds the lock (for as long as its commit takes): wait
  // for it on a thread that may block, not here.
  if (!e->write_mu.TryLock()) return StepVerdict::kBlocking;
  // From here on, every path releases write_mu exactly once, before `done` runs (or before
  // answering kBlocking).
  PendingStep p = BeginStep(name, *e, request, if_epoch, /*from_memory=*/shared);
  if (shared && p.answer && p.answer->status().code() == absl::StatusCode::kAborted) {
    e->write_mu.Unlock();  // memory may be stale for this answer: re-read first
    return StepVerdict::kBlocking;
  }
  absl::StatusOr<std::string> record =
      p.answer ? absl::StatusOr<std::string>("") : EncodeRecord(p.meta, *p.next);
  if (p.answer || !record.ok()) {
    absl::StatusOr<StepOutcome> answer =
        p.answer ? *std::move(p.answer) : absl::StatusOr<StepOutcome>(record.status());
    e->write_mu.Unlock();
    done(StepVerdict::kAnswered, std::move(answer));
    return StepVerdict::kAnswered;
  }
  Mutation m{Mutation::Kind::kPut, name, *std::move(record), e->store_revision};
  // std::function needs a copyable callable: the new state rides in a shared_ptr.
  auto pending = std::make_shared<PendingStep>(std::move(p));
  store_->CommitAsync(std::move(m), [this, e, pending, shared,
                                     done = std::move(done)](absl::StatusOr<int64_t> rev) {
    if (!rev.ok()) {
      // Nothing to roll back: the new state lives only in `pending`, which is dropped.
      e->write_mu.Unlock();
      if (shared && IsLostCompare(rev.status())) {
        // Another replica stepped first: decide afresh where blocking is fine.
        done(StepVerdict::kBlocking, rev.status());
        return;
      }
      LogCommitFailure("put", pending->meta.name, rev.status());
      done(StepVerdict::kAnswered, StoreFailure(rev.status()));
      return;
    }
    StepOutcome out;
    out.session = InstallCommitted(*e, *rev, std::move(pending->meta), std::move(pending->next));
    out.advanced = true;
    e->write_mu.Unlock();
    done(StepVerdict::kAnswered, std::move(out));
  });
  return StepVerdict::kAnswered;
}

}  // namespace lrsched
