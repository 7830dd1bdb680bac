// Copyright lrsched authors.
//
// The registry's side of a shared store's change feed (SharedStore::Subscribe): it applies every
// replica's commits to the sessions in memory as they happen, so reads need not re-read the
// store, and lrsched's own Watch streams see other replicas' changes. It also decides whether
// a read may be served from memory (PrepareRead) and says how stale memory may be.
//
// The feed runs on the store's thread and calls ApplyChanges, Reload and SetFeedHealth one at
// a time; it applies changes through Install, the same revision-compared path Sync uses, so a
// change arriving after a read already brought it (or a newer one) changes nothing.
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"
#include "server/registry/registry.h"

namespace lrsched {

class Registry::FeedListener final : public SharedStore::ChangeListener {
 public:
  explicit FeedListener(Registry* registry) : registry_(registry) {}
  void OnChanges(const std::vector<SharedStore::Change>& changes) override {
    registry_->ApplyChanges(changes);
  }
  absl::StatusOr<int64_t> OnResync() override { return registry_->Reload(); }
  void OnFeedHealth(const absl::Status& status) override { registry_->SetFeedHealth(status); }

 private:
  Registry* const registry_;
};

absl::Status Registry::StartFeed(const FeedOptions& options) {
  SharedStore* shared = store_->shared();
  if (shared == nullptr) return absl::OkStatus();
  absl::MutexLock c(&feed_ctl_mu_);
  if (feed_ != nullptr) return absl::FailedPreconditionError("the change feed is running");
  {
    absl::MutexLock l(&feed_mu_);
    max_staleness_ = options.max_staleness;
    feed_state_ = FeedStatus{};
  }
  // Load read the store at this revision; the feed brings everything after it.
  const int64_t from = shared->last_load_revision();
  feed_revision_.store(from);
  auto listener = std::make_unique<FeedListener>(this);
  absl::StatusOr<std::unique_ptr<SharedStore::Subscription>> sub =
      shared->Subscribe(from, listener.get());
  if (!sub.ok()) return sub.status();
  feed_listener_ = std::move(listener);
  feed_ = *std::move(sub);
  feed_active_.store(true);
  logging::Info("store_feed_started").Kv("from_revision", from);
  return absl::OkStatus();
}

void Registry::StopFeed() {
  std::unique_ptr<SharedStore::Subscription> feed;
  std::unique_ptr<SharedStore::ChangeListener> listener;
  {
    absl::MutexLock c(&feed_ctl_mu_);
    if (feed_ == nullptr) return;
    feed_active_.store(false);  // from now on reads re-read the store
    feed = std::move(feed_);
    listener = std::move(feed_listener_);
  }
  // Joins the feed's thread, which may be inside ApplyChanges: no registry lock is held here.
  feed.reset();
  listener.reset();
  absl::MutexLock m(&map_mu_);
  tombstones_.clear();
}

FeedStatus Registry::feed_status() const {
  FeedStatus st;
  {
    absl::MutexLock l(&feed_mu_);
    st = feed_state_;
  }
  st.active = FeedActive();
  st.revision = feed_revision_.load();
  return st;
}

void Registry::ApplyChanges(const std::vector<SharedStore::Change>& changes) {
  for (const SharedStore::Change& c : changes) {
    // Announced before it is applied: a read racing this change then knows not to install
    // what it read if that is not newer (see Install).
    if (c.revision > feed_revision_.load()) feed_revision_.store(c.revision);
    SharedStore::ReadResult rec;
    rec.found = !c.deleted;
    rec.value = c.value;
    rec.revision = c.revision;
    rec.read_revision = c.revision;
    absl::Status s = Install(c.name, rec, /*from_feed=*/true);
    if (!s.ok()) {
      // Nothing better to do than say so: the session stays as it was here until it changes
      // again or a call re-reads it (consistent reads, mutations on a lost compare).
      logging::Error("feed_change_not_applied")
          .Kv("name", c.name)
          .Kv("revision", c.revision)
          .Err(s);
    }
  }
  const int64_t applied = feed_revision_.load();
  absl::MutexLock m(&map_mu_);
  for (auto it = tombstones_.begin(); it != tombstones_.end();) {
    it = it->second <= applied ? tombstones_.erase(it) : std::next(it);
  }
}

absl::StatusOr<int64_t> Registry::Reload() {
  absl::MutexLock load(&load_mu_);
  const absl::Time t0 = absl::Now();
  std::unordered_set<std::string> seen;
  absl::Status s = store_->LoadAll(
      [&](std::string_view name, std::string_view value, int64_t revision) -> absl::Status {
        std::string n(name);
        SharedStore::ReadResult rec;
        rec.found = true;
        rec.value = std::string(value);
        rec.revision = revision;
        rec.read_revision = revision;
        absl::Status st = Install(n, rec, /*from_feed=*/true);
        if (!st.ok()) {
          logging::Error("feed_change_not_applied").Kv("name", n).Kv("revision", revision).Err(st);
        }
        seen.insert(std::move(n));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  // Only a shared store's feed calls Reload; 0 ("none") otherwise, as for a store without one.
  SharedStore* shared = store_->shared();
  const int64_t at = shared != nullptr ? shared->last_load_revision() : 0;
  if (at > feed_revision_.load()) feed_revision_.store(at);
  // Sessions the re-list did not see were deleted while the feed was away, unless this
  // replica committed them after the re-list read.
  std::vector<std::pair<std::string, std::shared_ptr<Entry>>> all;
  {
    absl::MutexLock m(&map_mu_);
    for (const auto& [name, e] : sessions_) {
      if (seen.count(name) == 0) all.emplace_back(name, e);
    }
    for (auto it = tombstones_.begin(); it != tombstones_.end();) {
      it = it->second <= at ? tombstones_.erase(it) : std::next(it);
    }
  }
  int64_t dropped = 0;
  for (const auto& [name, e] : all) {
    HandoffLock::Hold w(&e->write_mu);
    absl::MutexLock l(&e->mu);
    if (!e->live || e->store_revision >= at) continue;
    DropLocked(name, e, Deleted(name));
    ++dropped;
  }
  logging::Info("sessions_reloaded")
      .Kv("count", static_cast<int64_t>(seen.size()))
      .Kv("dropped", dropped)
      .Kv("revision", at)
      .Kv("ms", absl::ToInt64Milliseconds(absl::Now() - t0));
  return at;
}

void Registry::SetFeedHealth(const absl::Status& status) {
  absl::MutexLock l(&feed_mu_);
  feed_healthy_.store(status.ok());
  if (status.ok()) {
    feed_state_.healthy = true;
    feed_state_.broken_since = absl::InfinitePast();
    feed_state_.error = absl::OkStatus();
    return;
  }
  if (feed_state_.healthy) {
    feed_state_.healthy = false;
    feed_state_.broken_since = absl::Now();
  }
  feed_state_.error = status;
}

absl::Status Registry::PrepareRead(const std::string& name, const ReadOptions& options) {
  if (!store_->shared()) return absl::OkStatus();
  if (options.consistent || !FeedActive()) return Sync(name);
  return CheckFeedFresh();
}

absl::Status Registry::CheckFeedFresh() const {
  if (!FeedActive() || feed_healthy_.load(std::memory_order_relaxed)) return absl::OkStatus();
  absl::MutexLock l(&feed_mu_);
  if (feed_state_.healthy) return absl::OkStatus();
  const absl::Duration broken = absl::Now() - feed_state_.broken_since;
  if (broken <= max_staleness_) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "storage: this replica's change feed has been broken for ",
      absl::FormatDuration(absl::Trunc(broken, absl::Milliseconds(1))),
      ", so its sessions may be that stale (more than the ", absl::FormatDuration(max_staleness_),
      " allowed; last revision seen ", feed_revision_.load(), "): ", feed_state_.error.message()));
}

void Registry::LogCommitFailure(const char* op, const std::string& name,
                                const absl::Status& s) const {
  // With several replicas a lost compare-and-swap is the ordinary end of a race (the caller
  // re-reads and decides again): not worth a warning per occurrence.
  if (store_->shared() && IsLostCompare(s)) {
    logging::Debug("commit_failed").Kv("op", op).Kv("name", name).Err(s);
  } else {
    logging::Warning("commit_failed").Kv("op", op).Kv("name", name).Err(s);
  }
}

}  // namespace lrsched
