// Copyright lrsched authors.
//
// The registry's map of entries, its mutations but steps (create, import, delete) and watches.
// Elsewhere: steps in server/registry/step.cc; the start-up load in server/registry/load.cc (and
// the rewrite of old records in server/registry/migrate.cc); reads that work on copies (list,
// lookahead, export) in server/registry/query.cc; a shared store's re-reads and change feed in
// server/registry/sync.cc and server/registry/feed.cc; damaged records in
// server/registry/damaged.cc.
#include "server/registry/registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"
#include "server/registry/amendment_meta.h"

namespace lrsched {
namespace {

// Releases a lock that was taken elsewhere (Reserve hands out locked entries).
class Unlocker {
 public:
  explicit Unlocker(HandoffLock* lock) : lock_(lock) {}
  ~Unlocker() { lock_->Unlock(); }
  Unlocker(const Unlocker&) = delete;
  Unlocker& operator=(const Unlocker&) = delete;

 private:
  HandoffLock* lock_;
};

// Where JSON values `have` (the session's) and `want` (the request's) first differ, e.g.
// "scheduler.T_max: 10 in the session, 20 in the request", so that ALREADY_EXISTS says what to
// look at; "" if equal. Numbers compare by value (10 == 10.0), as Create compares specs; object
// keys in nlohmann::json's (sorted) order, so the answer is the same on every call.
std::string FirstDifference(const nlohmann::json& have, const nlohmann::json& want,
                            const std::string& path) {
  auto at = [&path](const std::string& key) { return path.empty() ? key : path + "." + key; };
  if (have.is_object() && want.is_object()) {
    for (auto it = have.begin(); it != have.end(); ++it) {
      auto other = want.find(it.key());
      if (other == want.end()) return at(it.key()) + ": only the session has it";
      std::string d = FirstDifference(it.value(), *other, at(it.key()));
      if (!d.empty()) return d;
    }
    for (auto it = want.begin(); it != want.end(); ++it) {
      if (!have.contains(it.key())) return at(it.key()) + ": only the request has it";
    }
    return "";
  }
  if (have.is_array() && want.is_array()) {
    for (size_t i = 0; i < have.size() && i < want.size(); ++i) {
      std::string d = FirstDifference(have[i], want[i], absl::StrCat(path, "[", i, "]"));
      if (!d.empty()) return d;
    }
    if (have.size() == want.size()) return "";
    return absl::StrCat(path, ": ", have.size(), " entries in the session, ", want.size(),
                        " in the request");
  }
  if (have == want) return "";
  return absl::StrCat(path, ": ", have.dump(), " in the session, ", want.dump(), " in the request");
}

}  // namespace

absl::Status StoreFailure(const absl::Status& s) {
  std::string msg = absl::StrCat("storage: ", std::string(s.message()));
  if (absl::IsUnavailable(s)) return absl::UnavailableError(msg);
  if (IsLostCompare(s)) return absl::AbortedError(msg);
  return absl::InternalError(msg);
}

absl::Status Registry::NotFound(const std::string& name) {
  return absl::NotFoundError(absl::StrCat("session \"", name, "\" not found"));
}

absl::Status Registry::Deleted(const std::string& name) {
  return absl::NotFoundError(absl::StrCat("session \"", name, "\" was deleted"));
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
  // A damaged record keeps its name until it is deleted: a create must not overwrite it.
  if (auto d = damaged_.find(name); d != damaged_.end()) {
    e->write_mu.Unlock();
    return d->second.why;
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

void Registry::DropLocked(const std::string& name, const std::shared_ptr<Entry>& e,
                          const absl::Status& why) {
  e->live = false;  // first: from now on readers holding `e` treat the session as absent
  EndWatchersLocked(*e, why);
  e->schedule.reset();
  Unmap(name, e);
}

SessionSnapshot Registry::SnapshotLocked(const Entry& e) {
  return MakeSnapshot(e.meta, e.schedule->spec_text(), *e.schedule);
}

absl::StatusOr<SessionSnapshot> Registry::Publish(const std::shared_ptr<Entry>& e, SessionMeta meta,
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
  logging::Info("session_created")
      .Kv("name", e->meta.name)
      .Kv("type", e->schedule->scheduler_type());
  return SnapshotLocked(*e);
}

absl::StatusOr<SessionSnapshot> Registry::CommitPut(Entry& e, SessionMeta meta,
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
  return InstallCommitted(e, *rev, std::move(meta), std::move(schedule));
}

SessionSnapshot Registry::InstallCommitted(Entry& e, int64_t store_revision, SessionMeta meta,
                                           std::unique_ptr<Schedule> schedule) {
  absl::MutexLock l(&e.mu);
  e.store_revision = store_revision;
  e.schedule = std::move(schedule);
  e.meta = std::move(meta);
  NotifyLocked(e);
  return SnapshotLocked(e);
}

absl::StatusOr<SessionSnapshot> Registry::Create(const std::string& name,
                                                 const nlohmann::json& spec, const Labels& labels) {
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
    HandoffLock::Hold w(&existing->write_mu);
    absl::MutexLock l(&existing->mu);
    // Not live: its create failed or it was deleted, and it is unmapped by now. Look again.
    if (!existing->live) continue;
    // JSON equality compares objects key by key and numbers by value (40 == 40.0).
    if (existing->schedule->spec() == spec && existing->meta.labels == labels) {
      return SnapshotLocked(*existing);
    }
    const bool same_spec = existing->schedule->spec() == spec;
    std::string differs = same_spec ? FirstDifference(nlohmann::json(existing->meta.labels),
                                                      nlohmann::json(labels), "labels")
                                    : FirstDifference(existing->schedule->spec(), spec, "");
    return absl::AlreadyExistsError(absl::StrCat(
        "session \"", name, "\" exists with a different ", same_spec ? "set of labels" : "spec",
        " (first difference: ", differs,
        "); to use the session as it is, attach to it (RemoteLRScheduler attach=True), or "
        "delete it or choose another name for a new one"));
  }
}

absl::StatusOr<SessionSnapshot> Registry::Get(const std::string& name, const ReadOptions& options) {
  if (absl::Status ready = PrepareRead(name, options); !ready.ok()) return ready;
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return Missing(name);
  absl::MutexLock l(&e->mu);
  if (!e->live) return Missing(name);
  return SnapshotLocked(*e);
}

absl::Status Registry::Delete(const std::string& name, std::optional<int64_t> if_revision) {
  // Shared store only. A damaged record (DATA_LOSS, set aside by the re-read) is what Delete
  // is for: go on and discard it.
  if (absl::Status synced = Sync(name); !synced.ok() && !absl::IsDataLoss(synced)) return synced;
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) {
    std::optional<Damage> damage = FindDamage(name);
    if (!damage) return Missing(name);
    if (if_revision) {
      return absl::FailedPreconditionError(absl::StrCat(
          "if_revision: session \"", name, "\" has a damaged record, whose revision is unknown"));
    }
    return DeleteDamaged(name, *damage);
  }
  // write_mu alone lets us read the fields (they change only with it held) while readers go on.
  HandoffLock::Hold w(&e->write_mu);
  if (!e->live) return Missing(name);
  if (if_revision && *if_revision != e->meta.revision) {
    return absl::FailedPreconditionError(absl::StrCat("if_revision: session \"", name,
                                                      "\" is at revision ", e->meta.revision,
                                                      ", not ", *if_revision));
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
  DropLocked(name, e, Deleted(name));
  return absl::OkStatus();
}

absl::StatusOr<SessionSnapshot> Registry::Import(const std::string& name,
                                                 std::unique_ptr<Schedule> schedule,
                                                 std::optional<Labels> labels, bool replace,
                                                 std::optional<int64_t> if_revision) {
  if (absl::Status synced = Sync(name); !synced.ok()) return synced;  // shared store only
  for (;;) {
    std::shared_ptr<Entry> existing;
    auto reserved = Reserve(name, &existing);
    if (!reserved.ok()) return reserved.status();
    if (*reserved != nullptr) {
      std::shared_ptr<Entry> e = *reserved;
      Unlocker unlock(&e->write_mu);
      // A conditional replace is about the session its caller read: gone means gone.
      if (if_revision) {
        Unmap(name, e);
        return Missing(name);
      }
      absl::Time now = absl::Now();
      SessionMeta meta{name, labels.value_or(Labels{}), 1, now, now};
      return Publish(e, std::move(meta), std::move(schedule));
    }
    HandoffLock::Hold w(&existing->write_mu);
    if (!existing->live) continue;
    if (!replace) {
      return absl::AlreadyExistsError(
          absl::StrCat("session \"", name, "\" exists (set replace to overwrite it)"));
    }
    if (if_revision && *if_revision != existing->meta.revision) {
      return absl::FailedPreconditionError(
          absl::StrCat("if_revision: session \"", name, "\" is at revision ",
                       existing->meta.revision, ", not ", *if_revision));
    }
    SessionMeta meta = existing->meta;
    if (labels) meta.labels = *labels;
    meta.revision += 1;
    meta.schedule_revision = meta.revision;  // a new definition: cached lookaheads are stale
    meta.update_time = absl::Now();
    return CommitPut(*existing, std::move(meta), std::move(schedule));
  }
}

void Registry::NotifyLocked(Entry& e) {
  if (e.watchers.empty()) return;
  e.watchers.erase(std::remove_if(e.watchers.begin(), e.watchers.end(),
                                  [](const auto& w) { return w->Closed(); }),
                   e.watchers.end());
  if (e.watchers.empty()) return;
  SessionSnapshot snapshot = SnapshotLocked(e);
  // The state an amendment just made (here or on another replica, through the feed) carries
  // it: its recorded revision is the session's.
  const std::vector<Amendment>& made = e.schedule->amendments();
  if (!made.empty() && e.meta.schedule_revision == e.meta.revision &&
      RecordedRevision(made.back()) == e.meta.revision) {
    snapshot.amendment = made.back();
  }
  auto snap = std::make_shared<const SessionSnapshot>(std::move(snapshot));
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
  if (e == nullptr) return Missing(name);
  absl::MutexLock l(&e->mu);
  if (!e->live) return Missing(name);
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
    return absl::ResourceExhaustedError(absl::StrCat("session \"", name, "\" has its limit of ",
                                                     kMaxWatchersPerSession, " watchers"));
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
