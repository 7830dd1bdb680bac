// Copyright lrsched authors.
//
// Registry::Sync and Install: bring one session's in-memory copy up to date with a shared
// store (etcd, several replicas), so that a replica serves what another replica committed.
// Sync re-reads the session; Install applies what was read, or what the change feed reported
// (server/registry/feed.cc). A no-op for a store this process alone writes (SQLite).
#include "absl/strings/str_cat.h"
#include "server/ops/log.h"
#include "server/registry/registry.h"

namespace lrsched {

absl::Status Registry::Sync(const std::string& name) {
  SharedStore* shared = store_->shared();
  if (shared == nullptr) return absl::OkStatus();
  absl::StatusOr<SharedStore::ReadResult> rec = shared->Read(name);
  if (!rec.ok()) return StoreFailure(rec.status());
  return Install(name, *rec, /*from_feed=*/false);
}

absl::Status Registry::Install(const std::string& name, const SharedStore::ReadResult& rec,
                               bool from_feed) {
  // Every decision compares revisions, so stale news (an older read, a change the feed brings
  // after a re-read already showed it) never replaces newer state.
  std::shared_ptr<Entry> e = Find(name);
  if (!rec.found) {
    ClearDamage(name, rec.read_revision);  // a damaged record deleted (by any replica)
    const bool feed = FeedActive();
    if (feed && !from_feed) Bury(name, rec.read_revision);  // the feed may be behind this read
    if (e == nullptr) return absl::OkStatus();
    HandoffLock::Hold w(&e->write_mu);
    absl::MutexLock l(&e->mu);
    // Dropped only if what we hold is older than the read: a create this replica committed
    // after the read (newer revision) stays.
    if (e->live && e->store_revision < rec.read_revision) DropLocked(name, e, Deleted(name));
    return absl::OkStatus();
  }
  if (e != nullptr) {
    // Up to date already: no decode. (Also keeps serving a state whose record the decoder
    // refuses, e.g. an lr beyond DecodeRecord's range, exactly as the SQLite store does.)
    absl::MutexLock l(&e->mu);
    if (e->live && e->store_revision >= rec.revision) return absl::OkStatus();
  }
  if (Buried(name, rec.revision)) return absl::OkStatus();  // deleted since
  auto decoded = DecodeRecordOf(name, rec.value);
  if (!decoded.ok()) {
    // Never served, never fatal: the name answers DATA_LOSS until the record is deleted or
    // replaced (another replica's put brings a good one through the feed).
    Quarantine(name, rec.revision, decoded.status());
    if (from_feed) return absl::OkStatus();  // logged once by Quarantine
    std::optional<Damage> damage = FindDamage(name);
    return damage ? damage->why : absl::DataLossError(decoded.status().message());
  }
  ClearDamage(name, rec.revision);
  // Bounded: each round finds the entry that replaced a dead one (a create that failed, a
  // delete), which needs a concurrent mutation of this very name.
  for (int round = 0; round < 64; ++round) {
    if (e == nullptr) {
      std::shared_ptr<Entry> existing;
      auto reserved = Reserve(name, &existing);
      if (!reserved.ok()) return reserved.status();
      if (*reserved != nullptr) {
        e = *reserved;  // locked, not yet live
        // A read racing the feed: if the feed is already past what we read, it has brought
        // or will bring this session, or it was deleted since the read; either way
        // installing what we read could resurrect a deleted session. At exactly the read's
        // revision, what we read is what the feed is installing (it announces a change
        // before applying it): install it, or a Step arriving in that window would answer
        // NOT_FOUND for a session that exists (the feed then finds it installed, same
        // revision); a later change is announced after our Reserve and waits for write_mu.
        if (!from_feed && FeedActive() && rec.read_revision < feed_revision_.load()) {
          Unmap(name, e);
          e->write_mu.Unlock();
          return absl::OkStatus();
        }
        {
          absl::MutexLock l(&e->mu);
          e->live = true;
          e->schedule = std::move(decoded->schedule);
          e->meta = std::move(decoded->meta);
          e->store_revision = rec.revision;
        }
        e->write_mu.Unlock();
        return absl::OkStatus();
      }
      e = existing;
    }
    // write_mu first: a mutation of this session in progress finishes before we decide.
    HandoffLock::Hold w(&e->write_mu);
    absl::MutexLock l(&e->mu);
    if (!e->live) {
      // Sync: a create or delete on this replica decided it; it re-syncs on conflict. The
      // feed must not lose the change: the dead entry is unmapped by now, look again.
      if (!from_feed) return absl::OkStatus();
      e = Find(name);
      continue;
    }
    if (e->store_revision >= rec.revision) return absl::OkStatus();
    e->schedule = std::move(decoded->schedule);
    e->meta = std::move(decoded->meta);
    e->store_revision = rec.revision;
    NotifyLocked(*e);
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("session \"", name, "\": changing too fast to install"));
}

void Registry::Bury(const std::string& name, int64_t revision) {
  if (revision <= 0 || revision <= feed_revision_.load()) return;  // the feed is past it
  absl::MutexLock m(&map_mu_);
  int64_t& r = tombstones_[name];
  if (r < revision) r = revision;
}

bool Registry::Buried(const std::string& name, int64_t revision) const {
  absl::MutexLock m(&map_mu_);
  auto it = tombstones_.find(name);
  return it != tombstones_.end() && it->second > revision;
}

}  // namespace lrsched
