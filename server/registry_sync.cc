// Copyright lrsched authors.
//
// Registry::Sync: brings one session's in-memory copy up to date with a shared store (etcd,
// several replicas), so that a replica serves what another replica committed. A no-op for a
// store this process alone writes (SQLite).
#include "absl/strings/str_cat.h"
#include "server/log.h"
#include "server/registry.h"

namespace lrsched {

absl::Status Registry::Sync(const std::string& name) {
  if (!store_->shared()) return absl::OkStatus();
  absl::StatusOr<Store::ReadResult> rec = store_->Read(name);
  if (!rec.ok()) return StoreFailure(rec.status());
  std::shared_ptr<Entry> e = Find(name);
  if (!rec->found) {
    if (e == nullptr) return absl::OkStatus();
    absl::MutexLock l(&e->mu);
    // Dropped only if what we hold is older than the read: a create this replica committed
    // after the read (newer revision) stays.
    if (e->live && e->store_revision < rec->read_revision) {
      e->live = false;
      EndWatchersLocked(*e, absl::NotFoundError(absl::StrCat("session \"", name,
                                                             "\" was deleted")));
      e->schedule.reset();
      Unmap(name, e);
    }
    return absl::OkStatus();
  }
  if (e != nullptr) {
    // Up to date already: no decode. (Also keeps serving a state whose record the decoder
    // refuses, e.g. an lr beyond DecodeRecord's range, exactly as the SQLite store does.)
    absl::MutexLock l(&e->mu);
    if (e->live && e->store_revision >= rec->revision) return absl::OkStatus();
  }
  auto decoded = DecodeRecord(rec->value);
  if (!decoded.ok()) {
    return absl::DataLossError(absl::StrCat("session \"", name, "\": ",
                                            std::string(decoded.status().message())));
  }
  if (e == nullptr) {
    std::shared_ptr<Entry> existing;
    auto reserved = Reserve(name, &existing);
    if (!reserved.ok()) return reserved.status();
    if (*reserved != nullptr) {
      e = *reserved;  // locked, not yet live
      e->live = true;
      e->spec_json = decoded->schedule->spec().dump();
      e->schedule = std::move(decoded->schedule);
      e->meta = std::move(decoded->meta);
      e->store_revision = rec->revision;
      e->mu.Unlock();
      return absl::OkStatus();
    }
    e = existing;
  }
  absl::MutexLock l(&e->mu);
  // Not live: a create or delete on this replica is deciding it; it will re-sync on conflict.
  if (!e->live || e->store_revision >= rec->revision) return absl::OkStatus();
  e->spec_json = decoded->schedule->spec().dump();
  e->schedule = std::move(decoded->schedule);
  e->meta = std::move(decoded->meta);
  e->store_revision = rec->revision;
  NotifyLocked(*e);
  return absl::OkStatus();
}

}  // namespace lrsched
