// Copyright lrsched authors.
//
// Registry: the live sessions of one server, each a Schedule plus its metadata, kept in memory
// and written through to a Store. It knows nothing of gRPC: the service validates requests,
// calls these methods, and converts the results.
//
// Concurrency. Many sessions step in parallel. Each session (Entry) has a mutex that
// serializes everything touching it, reads included; the name -> Entry map has its own mutex,
// held only for lookups and insertions. Lock order: an Entry's mutex, then the map's (never the
// other way round, except for an Entry no other thread can see yet). A mutation holds its
// session's mutex while it computes the new state on a copy, while it waits for the durable
// commit, and while it publishes the result, so (a) readers never see an uncommitted state,
// (b) commits of different sessions wait side by side and the store can group them into one
// transaction, and (c) a failed commit leaves the session exactly as it was (the copy is
// dropped).
//
// Invariants: every acknowledged mutation is committed to the Store before the method
// returns; an Entry in the map with live == false is being created or was just deleted and is
// treated as absent; the map holds at most max_sessions entries (a pending
// create counts).
#ifndef LRSCHED_SERVER_REGISTRY_H_
#define LRSCHED_SERVER_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "scheduler/schedule.h"
#include "server/session.h"
#include "server/store.h"

namespace lrsched {

// Receives a watched session's changes. Called with the session's mutex held, so
// implementations must not block and must not call back into the Registry.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // The session as it is now (first call) and after each change.
  virtual void OnSnapshot(std::shared_ptr<const SessionSnapshot> snapshot) = 0;
  // The stream is over (NOT_FOUND: deleted; UNAVAILABLE: server shutting down). Last call.
  virtual void OnEnd(const absl::Status& status) = 0;
  // True once the sink wants no more calls (its stream ended); the registry then drops it.
  virtual bool Closed() const = 0;
};

struct StepOutcome {
  SessionSnapshot session;
  bool advanced = false;
};

struct EpochGroups {
  int64_t epoch = 0;
  std::vector<GroupValue> groups;
};

struct Lookahead {
  int64_t last_epoch = 0;
  int64_t revision = 0;
  std::vector<GroupValue> groups;   // at last_epoch + ahead
  std::vector<EpochGroups> window;  // now, then after 1, 2, ... more steps
};

struct ExportedState {
  std::string state_json;
  std::string torch_state_dict_json;
  std::string torch_param_groups_json;
  SessionSnapshot session;
};

struct ListQuery {
  std::string name_prefix;
  Labels labels;               // all must match
  int32_t page_size = 100;     // > 0
  std::string after;           // only names greater than this
};
struct ListPage {
  std::vector<SessionSnapshot> sessions;
  std::string last_name;  // set when more may follow: pass as `after`
};

class Registry {
 public:
  static constexpr size_t kMaxWatchersPerSession = 1024;

  // `store` must outlive the registry.
  Registry(Store* store, int64_t max_sessions);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Loads every stored session (start-up). Fails on the first unreadable record.
  absl::Status Load();
  size_t size() const;

  // The new session, or the existing one when it has the same spec and labels (a retry).
  absl::StatusOr<SessionSnapshot> Create(const std::string& name, const nlohmann::json& spec,
                                         const Labels& labels);
  absl::StatusOr<SessionSnapshot> Get(const std::string& name);
  absl::StatusOr<ListPage> List(const ListQuery& query);
  absl::Status Delete(const std::string& name, std::optional<int64_t> if_revision);
  // One step; with if_epoch set and different from last_epoch, nothing changes (advanced =
  // false). A step the schedule refuses is FAILED_PRECONDITION.
  absl::StatusOr<StepOutcome> Step(const std::string& name, const StepRequest& request,
                                   std::optional<int64_t> if_epoch);
  // Values `ahead` steps ahead and a window of `window` epochs, computed on a copy outside the
  // session's lock; `cancelled` is polled during long lookaheads.
  absl::StatusOr<Lookahead> LookAhead(const std::string& name, int64_t ahead, int32_t window,
                                      const std::function<bool()>& cancelled);
  absl::StatusOr<ExportedState> Export(const std::string& name);
  // Creates `name` from `schedule`, or replaces the existing session when `replace`. Labels
  // default to the replaced session's (or none).
  absl::StatusOr<SessionSnapshot> Import(const std::string& name,
                                         std::unique_ptr<Schedule> schedule,
                                         std::optional<Labels> labels, bool replace);

  // Registers `sink`; it receives the current state at once, then every change.
  absl::Status Watch(const std::string& name, std::shared_ptr<WatchSink> sink);
  // Ends every watch (UNAVAILABLE) and refuses new ones; mutations still work until the store
  // closes.
  void Shutdown();

 private:
  struct Entry {
    absl::Mutex mu;
    bool live ABSL_GUARDED_BY(mu) = false;
    SessionMeta meta ABSL_GUARDED_BY(mu);
    std::unique_ptr<Schedule> schedule ABSL_GUARDED_BY(mu);
    std::string spec_json ABSL_GUARDED_BY(mu);  // canonical dump of schedule->spec()
    int64_t store_revision ABSL_GUARDED_BY(mu) = 0;
    std::vector<std::shared_ptr<WatchSink>> watchers ABSL_GUARDED_BY(mu);
  };

  // The entry mapped to `name` (live or not), or nullptr.
  std::shared_ptr<Entry> Find(const std::string& name) const;
  // Maps a new entry for `name`, returned with its mutex held and live == false; or, when the
  // name is taken, returns nullptr and the existing entry in *existing.
  absl::StatusOr<std::shared_ptr<Entry>> Reserve(const std::string& name,
                                                 std::shared_ptr<Entry>* existing);
  // Drops `e` from the map if it is still the entry for its name.
  void Unmap(const std::string& name, const std::shared_ptr<Entry>& e);
  // Creates the session in a reserved entry (commit, then publish); on failure unmaps it.
  absl::StatusOr<SessionSnapshot> Publish(const std::shared_ptr<Entry>& e, SessionMeta meta,
                                          std::unique_ptr<Schedule> schedule)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu);
  // Commits `meta` + `schedule` as the entry's new state and installs it; on failure the entry
  // is unchanged.
  // `spec_changed`: the schedule's spec differs from the entry's (an import).
  absl::Status CommitPut(Entry& e, SessionMeta meta, std::unique_ptr<Schedule> schedule,
                         bool spec_changed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  // Shared stores only (Store::shared(), e.g. etcd with several replicas): re-reads `name`
  // from the store and installs, replaces or drops the in-memory entry accordingly
  // (registry_sync.cc). OK and nothing done for a store this process alone writes.
  absl::Status Sync(const std::string& name);
  absl::StatusOr<StepOutcome> StepOnce(const std::string& name, const StepRequest& request,
                                       std::optional<int64_t> if_epoch);
  void NotifyLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  void EndWatchersLocked(Entry& e, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  static SessionSnapshot SnapshotLocked(const Entry& e) ABSL_SHARED_LOCKS_REQUIRED(e.mu);

  Store* const store_;
  const int64_t max_sessions_;

  mutable absl::Mutex map_mu_;
  std::map<std::string, std::shared_ptr<Entry>> sessions_ ABSL_GUARDED_BY(map_mu_);
  bool shutting_down_ ABSL_GUARDED_BY(map_mu_) = false;
};

// Maps a store failure to what the client sees: UNAVAILABLE stays (retryable), a lost
// compare-and-swap is ABORTED, anything else INTERNAL.
absl::Status StoreFailure(const absl::Status& s);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_REGISTRY_H_
