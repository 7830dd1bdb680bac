// Copyright lrsched authors.
//
// Records set aside as damaged (see registry.h, "Damaged records"): a name whose stored record
// does not decode answers DATA_LOSS, is logged once, and is counted, until it is deleted or a
// good record replaces it; the record stays in the store as it is, for an operator to inspect.
#include "absl/strings/str_cat.h"
#include "server/ops/log.h"
#include "server/registry/registry.h"

namespace lrsched {

absl::Status Registry::Missing(const std::string& name) const {
  if (damaged_count_.load(std::memory_order_relaxed) > 0) {
    if (std::optional<Damage> d = FindDamage(name)) return d->why;
  }
  return NotFound(name);
}

std::optional<Registry::Damage> Registry::FindDamage(const std::string& name) const {
  absl::MutexLock m(&map_mu_);
  auto it = damaged_.find(name);
  if (it == damaged_.end()) return std::nullopt;
  return it->second;
}

void Registry::Quarantine(const std::string& name, int64_t revision, const absl::Status& why) {
  const absl::Status status = absl::DataLossError(
      absl::StrCat("session \"", name, "\": its stored record (store revision ", revision,
                   ") is damaged and set aside: ", why.message(), "; DeleteSession discards it"));
  // Whatever this replica served for the name is no longer what the store holds.
  if (std::shared_ptr<Entry> e = Find(name)) {
    HandoffLock::Hold w(&e->write_mu);
    absl::MutexLock l(&e->mu);
    if (e->live && e->store_revision < revision) DropLocked(name, e, status);
  }
  {
    absl::MutexLock m(&map_mu_);
    auto live = sessions_.find(name);
    if (live != sessions_.end()) return;  // a newer state of it committed meanwhile
    auto [it, inserted] = damaged_.try_emplace(name);
    if (!inserted && it->second.revision >= revision) return;  // set aside already
    it->second = Damage{revision, status};
    damaged_count_.store(damaged_.size(), std::memory_order_relaxed);
  }
  // Once per damaged record, however often it is read (set aside already returned above).
  logging::Error("record_damaged").Kv("name", name).Kv("store_revision", revision).Err(why);
}

void Registry::ClearDamage(const std::string& name, int64_t revision) {
  if (damaged_count_.load(std::memory_order_relaxed) == 0) return;
  absl::MutexLock m(&map_mu_);
  auto it = damaged_.find(name);
  if (it == damaged_.end() || it->second.revision >= revision) return;
  damaged_.erase(it);
  damaged_count_.store(damaged_.size(), std::memory_order_relaxed);
  logging::Info("record_damage_cleared").Kv("name", name).Kv("store_revision", revision);
}

absl::Status Registry::DeleteDamaged(const std::string& name, const Damage& damage) {
  // Compared on the damaged record's revision: a good record put meanwhile (another replica)
  // is not deleted unseen.
  Mutation m{Mutation::Kind::kDelete, name, "", damage.revision};
  absl::StatusOr<int64_t> rev = store_->Commit(m);
  if (!rev.ok()) {
    LogCommitFailure("delete", name, rev.status());
    return StoreFailure(rev.status());
  }
  if (FeedActive()) Bury(name, *rev);
  {
    absl::MutexLock lock(&map_mu_);
    auto it = damaged_.find(name);
    if (it != damaged_.end() && it->second.revision == damage.revision) damaged_.erase(it);
    damaged_count_.store(damaged_.size(), std::memory_order_relaxed);
  }
  logging::Info("damaged_record_deleted").Kv("name", name).Kv("store_revision", damage.revision);
  return absl::OkStatus();
}

}  // namespace lrsched
