// Copyright lrsched authors.
//
// The registry's mutations (create, step, import, delete), start-up load and watches. Reads
// that work on copies (list, lookahead, export) are in registry_query.cc.
#include "server/registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/log.h"

namespace lrsched {
namespace {

// Releases a mutex that was locked elsewhere (Reserve hands out locked entries).
class Unlocker {
 public:
  explicit Unlocker(absl::Mutex* mu) : mu_(mu) {}
  ~Unlocker() { mu_->Unlock(); }
  Unlocker(const Unlocker&) = delete;
  Unlocker& operator=(const Unlocker&) = delete;

 private:
  absl::Mutex* mu_;
};

absl::Status NotFound(const std::string& name) {
  return absl::NotFoundError(absl::StrCat("session \"", name, "\" not found"));
}

}  // namespace

absl::Status StoreFailure(const absl::Status& s) {
  std::string msg = absl::StrCat("storage: ", std::string(s.message()));
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
      return absl::UnavailableError(msg);
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return absl::AbortedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

Registry::Registry(Store* store, int64_t max_sessions)
    : store_(store), max_sessions_(max_sessions) {}
Registry::~Registry() { StopFeed(); }

size_t Registry::size() const {
  absl::MutexLock m(&map_mu_);
  return sessions_.size();
}

std::shared_ptr<Registry::Entry> Registry::Find(const std::string& name) const {
  absl::MutexLock m(&map_mu_);
  auto it = sessions_.find(name);
  return it == sessions_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<Registry::Entry>> Registry::Reserve(
    const std::string& name, std::shared_ptr<Entry>* existing) {
  auto e = std::make_shared<Entry>();
  // Locked before it is visible, so whoever finds it waits until the create is decided.
  e->write_mu.Lock();
  absl::MutexLock m(&map_mu_);
  auto it = sessions_.find(name);
  if (it != sessions_.end()) {
    *existing = it->second;
    e->write_mu.Unlock();
    return nullptr;
  }
  if (static_cast<int64_t>(sessions_.size()) >= max_sessions_) {
    e->write_mu.Unlock();
    return absl::ResourceExhaustedError(
        absl::StrCat("the server holds its limit of ", max_sessions_, " sessions"));
  }
  sessions_.emplace(name, e);
  return e;
}

void Registry::Unmap(const std::string& name, const std::shared_ptr<Entry>& e) {
  absl::MutexLock m(&map_mu_);
  auto it = sessions_.find(name);
  if (it != sessions_.end() && it->second == e) sessions_.erase(it);
}

SessionSnapshot Registry::SnapshotLocked(const Entry& e) {
  return MakeSnapshot(e.meta, e.schedule->spec_text(), *e.schedule);
}

absl::StatusOr<SessionSnapshot> Registry::Publish(const std::shared_ptr<Entry>& e,
                                                  SessionMeta meta,
                                                  std::unique_ptr<Schedule> schedule) {
  auto record = EncodeRecord(meta, *schedule);
  if (!record.ok()) {
    Unmap(meta.name, e);
    return record.status();
  }
  Mutation m{Mutation::Kind::kPut, meta.name, *std::move(record), /*expected_revision=*/0};
  absl::StatusOr<int64_t> rev = store_->Commit(m);
  if (!rev.ok()) {
    LogCommitFailure("create", meta.name, rev.status());
    Unmap(meta.name, e);
    return StoreFailure(rev.status());
  }
  absl::MutexLock l(&e->mu);
  e->live = true;
  e->store_revision = *rev;
  e->schedule = std::move(schedule);
  e->meta = std::move(meta);
  log::Info("session_created").Kv("name", e->meta.name).Kv("type", e->schedule->scheduler_type());
  return SnapshotLocked(*e);
}

absl::Status Registry::CommitPut(Entry& e, SessionMeta meta,
                                 std::unique_ptr<Schedule> schedule) {
  auto record = EncodeRecord(meta, *schedule);
  if (!record.ok()) return record.status();
  Mutation m{Mutation::Kind::kPut, meta.name, *std::move(record), e.store_revision};
  absl::StatusOr<int64_t> rev = store_->Commit(m);
  if (!rev.ok()) {
    // Nothing to roll back: the new state lives only in `schedule`, which is dropped.
    LogCommitFailure("put", meta.name, rev.status());
    return StoreFailure(rev.status());
  }
  absl::MutexLock l(&e.mu);
  e.store_revision = *rev;
  e.schedule = std::move(schedule);
  e.meta = std::move(meta);
  NotifyLocked(e);
  return absl::OkStatus();
}

absl::StatusOr<SessionSnapshot> Registry::Create(const std::string& name,
                                                 const nlohmann::json& spec,
                                                 const Labels& labels) {
  auto schedule = Schedule::Create(spec);
  if (!schedule.ok()) {
    // Whatever the engine's code, a spec it cannot build is the request's fault.
    return absl::InvalidArgumentError(
        absl::StrCat("spec_json: ", std::string(schedule.status().message())));
  }
  // Shared store: learn of a session another replica created. (Two replicas creating the same
  // name at the same instant: one wins, the other answers ABORTED, and a retry sees it.)
  if (absl::Status synced = Sync(name); !synced.ok()) return synced;
  for (;;) {
    std::shared_ptr<Entry> existing;
    auto reserved = Reserve(name, &existing);
    if (!reserved.ok()) return reserved.status();
    if (*reserved != nullptr) {
      std::shared_ptr<Entry> e = *reserved;
      Unlocker unlock(&e->write_mu);
      absl::Time now = absl::Now();
      SessionMeta meta{name, labels, 1, now, now};
      return Publish(e, std::move(meta), *std::move(schedule));
    }
    // write_mu first: a create still deciding this entry finishes before we look at it.
    absl::MutexLock w(&existing->write_mu);
    absl::MutexLock l(&existing->mu);
    // Not live: its create failed or it was deleted, and it is unmapped by now. Look again.
    if (!existing->live) continue;
    // JSON equality compares objects key by key and numbers by value (40 == 40.0).
    if (existing->schedule->spec() == spec && existing->meta.labels == labels) {
      return SnapshotLocked(*existing);
    }
    return absl::AlreadyExistsError(absl::StrCat(
        "session \"", name, "\" exists with a different ",
        existing->schedule->spec() == spec ? "set of labels" : "spec"));
  }
}

absl::StatusOr<SessionSnapshot> Registry::Get(const std::string& name,
                                              const ReadOptions& options) {
  if (absl::Status ready = PrepareRead(name, options); !ready.ok()) return ready;
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return NotFound(name);
  absl::MutexLock l(&e->mu);
  if (!e->live) return NotFound(name);
  return SnapshotLocked(*e);
}

absl::Status Registry::Delete(const std::string& name, std::optional<int64_t> if_revision) {
  if (absl::Status synced = Sync(name); !synced.ok()) return synced;  // shared store only
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return NotFound(name);
  // write_mu alone lets us read the fields (they change only with it held) while readers go on.
  absl::MutexLock w(&e->write_mu);
  if (!e->live) return NotFound(name);
  if (if_revision && *if_revision != e->meta.revision) {
    return absl::FailedPreconditionError(absl::StrCat(
        "if_revision: session \"", name, "\" is at revision ", e->meta.revision, ", not ",
        *if_revision));
  }
  Mutation m{Mutation::Kind::kDelete, name, "", e->store_revision};
  absl::StatusOr<int64_t> rev = store_->Commit(m);
  if (!rev.ok()) {
    LogCommitFailure("delete", name, rev.status());
    return StoreFailure(rev.status());
  }
  // The feed may still be behind this delete: it must not bring back an older state meanwhile.
  if (FeedActive()) Bury(name, *rev);
  absl::MutexLock l(&e->mu);
  e->live = false;
  EndWatchersLocked(*e, absl::NotFoundError(absl::StrCat("session \"", name, "\" was deleted")));
  e->schedule.reset();
  Unmap(name, e);
  return absl::OkStatus();
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

absl::StatusOr<StepOutcome> Registry::StepOnce(const std::string& name,
                                               const StepRequest& request,
                                               std::optional<int64_t> if_epoch,
                                               bool from_memory) {
  const absl::Status maybe_stale = absl::AbortedError("memory may be stale: re-read");
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return from_memory ? maybe_stale : NotFound(name);
  // write_mu alone: the fields can be read (they change only with it held), and readers of
  // this session are not held up by the commit below.
  absl::MutexLock w(&e->write_mu);
  if (!e->live) return from_memory ? maybe_stale : NotFound(name);
  StepOutcome out;
  if (if_epoch && *if_epoch != e->schedule->last_epoch()) {
    if (from_memory) return maybe_stale;
    out.session = SnapshotLocked(*e);
    return out;
  }
  // Step a copy: the live schedule changes only once the new state is durable.
  std::unique_ptr<Schedule> next = e->schedule->Clone();
  absl::Status s = next->Step(request);
  if (!s.ok()) {
    // Stale memory could refuse what the current state allows (another replica imported a
    // different schedule under this name): decide on a fresh read.
    if (from_memory) return maybe_stale;
    return absl::FailedPreconditionError(std::string(s.message()));
  }
  SessionMeta meta = e->meta;
  meta.revision += 1;
  meta.update_time = absl::Now();
  s = CommitPut(*e, std::move(meta), std::move(next));
  if (!s.ok()) return s;
  out.session = SnapshotLocked(*e);
  out.advanced = true;
  return out;
}

absl::StatusOr<SessionSnapshot> Registry::Import(const std::string& name,
                                                 std::unique_ptr<Schedule> schedule,
                                                 std::optional<Labels> labels, bool replace) {
  if (absl::Status synced = Sync(name); !synced.ok()) return synced;  // shared store only
  for (;;) {
    std::shared_ptr<Entry> existing;
    auto reserved = Reserve(name, &existing);
    if (!reserved.ok()) return reserved.status();
    if (*reserved != nullptr) {
      std::shared_ptr<Entry> e = *reserved;
      Unlocker unlock(&e->write_mu);
      absl::Time now = absl::Now();
      SessionMeta meta{name, labels.value_or(Labels{}), 1, now, now};
      return Publish(e, std::move(meta), std::move(schedule));
    }
    absl::MutexLock w(&existing->write_mu);
    if (!existing->live) continue;
    if (!replace) {
      return absl::AlreadyExistsError(
          absl::StrCat("session \"", name, "\" exists (set replace to overwrite it)"));
    }
    SessionMeta meta = existing->meta;
    if (labels) meta.labels = *labels;
    meta.revision += 1;
    meta.update_time = absl::Now();
    absl::Status s = CommitPut(*existing, std::move(meta), std::move(schedule));
    if (!s.ok()) return s;
    return SnapshotLocked(*existing);
  }
}

void Registry::NotifyLocked(Entry& e) {
  if (e.watchers.empty()) return;
  e.watchers.erase(std::remove_if(e.watchers.begin(), e.watchers.end(),
                                  [](const auto& w) { return w->Closed(); }),
                   e.watchers.end());
  if (e.watchers.empty()) return;
  auto snap = std::make_shared<const SessionSnapshot>(SnapshotLocked(e));
  for (const auto& w : e.watchers) w->OnSnapshot(snap);
}

void Registry::EndWatchersLocked(Entry& e, const absl::Status& status) {
  for (const auto& w : e.watchers) w->OnEnd(status);
  e.watchers.clear();
}

absl::Status Registry::Watch(const std::string& name, std::shared_ptr<WatchSink> sink) {
  if (absl::Status ready = PrepareRead(name, {}); !ready.ok()) return ready;
  // A watch lasts: one re-read is cheap next to it, and spares a NOT_FOUND for a session
  // another replica created a moment ago that the feed has not brought yet.
  if (FeedActive() && Find(name) == nullptr) {
    if (absl::Status synced = Sync(name); !synced.ok()) return synced;
  }
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return NotFound(name);
  absl::MutexLock l(&e->mu);
  if (!e->live) return NotFound(name);
  {
    // Checked under the entry's lock, so Shutdown (which ends watchers entry by entry after
    // setting the flag) cannot miss this one.
    absl::MutexLock m(&map_mu_);
    if (shutting_down_) return absl::UnavailableError("the server is shutting down");
  }
  e->watchers.erase(std::remove_if(e->watchers.begin(), e->watchers.end(),
                                   [](const auto& w) { return w->Closed(); }),
                    e->watchers.end());
  if (e->watchers.size() >= kMaxWatchersPerSession) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session \"", name, "\" has its limit of ", kMaxWatchersPerSession, " watchers"));
  }
  sink->OnSnapshot(std::make_shared<const SessionSnapshot>(SnapshotLocked(*e)));
  e->watchers.push_back(std::move(sink));
  return absl::OkStatus();
}

void Registry::Shutdown() {
  std::vector<std::shared_ptr<Entry>> all;
  {
    absl::MutexLock m(&map_mu_);
    shutting_down_ = true;
    for (const auto& [name, e] : sessions_) all.push_back(e);
  }
  const absl::Status bye = absl::UnavailableError("the server is shutting down");
  for (const auto& e : all) {
    absl::MutexLock l(&e->mu);
    EndWatchersLocked(*e, bye);
  }
}

}  // namespace lrsched
