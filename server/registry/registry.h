// Copyright lrsched authors.
//
// Registry: the live sessions of one server, each a Schedule plus its metadata, kept in memory
// and written through to a Store. It knows nothing of gRPC: the service validates requests,
// calls these methods, and converts the results.
//
// Concurrency. Many sessions step in parallel. Each session (Entry) has two locks: write_mu
// serializes its mutations, mu guards its fields for short reads and installs (see Entry). The
// name -> Entry map has its own mutex, held only for lookups and insertions. Lock order:
// write_mu, then mu, then the map's (never the other way round, except for an Entry no other
// thread can see yet). A mutation holds write_mu while it computes the new state on a copy,
// while it waits for the durable commit, and while it installs the result (taking mu only for
// that), so (a) readers never see an uncommitted state and never wait for a commit, (b)
// commits of different sessions wait side by side and the store can group them into one
// transaction, and (c) a failed commit leaves the session exactly as it was (the copy is
// dropped).
//
// Shared stores (etcd, several replicas). With a change feed (StartFeed; the store's
// Subscribe) the sessions in memory follow every replica's commits, so reads are served from
// memory: a read may lag another replica's commit by the feed's delay (ReadOptions::consistent
// reads the store instead), and once the feed has been broken longer than max_staleness such
// reads fail UNAVAILABLE rather than serve unboundedly old state. Mutations always go to the
// store, compared on the revision this replica last saw; a lost compare re-reads the one
// session (Sync) and decides again. Without a feed, every call re-reads its session first.
//
// Damaged records. A stored record that does not decode (a failed checksum, foreign bytes
// under an etcd prefix, a state the engine refuses) is never served and never crashes the
// server. At start-up Load refuses it (DamagedRecords::kRefuse) or sets it aside
// (kQuarantine); a shared store's feed and re-reads always set it aside. A name set aside has
// no Entry; every call naming it answers DATA_LOSS, except Delete, which removes the record,
// and a later good record of it (another replica's put, seen by the feed), which clears it.
// The record itself is left as it is in the store.
//
// Invariants: every acknowledged mutation is committed to the Store before the method
// returns; an Entry in the map with live == false is being created or was just deleted and is
// treated as absent; the map holds at most max_sessions entries (a pending
// create counts); a name is never both in the map (live) and set aside.
#ifndef LRSCHED_SERVER_REGISTRY_H_
#define LRSCHED_SERVER_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "scheduler/schedule.h"
#include "server/registry/amend_request.h"
#include "server/registry/handoff_lock.h"
#include "server/registry/session.h"
#include "server/store/shared_store.h"
#include "server/store/store.h"

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

struct Lookahead {
  int64_t last_epoch = 0;
  int64_t revision = 0;
  int64_t schedule_revision = 0;    // the definition the values were computed with
  std::vector<GroupValue> groups;   // after `ahead` more steps
  int64_t epoch = 0;                // their last_epoch (last_epoch + ahead; Megatron: num_steps)
  std::vector<EpochGroups> window;  // now, then after 1, 2, ... more steps
};

// What one lookahead may cost (the service's --max_call_cost and --max_reply_bytes): its work,
// steps x Schedule::step_cost(), and its window's memory, kLookaheadValueBytes per group value.
// Past either, LookAhead answers RESOURCE_EXHAUSTED naming ahead or window.
struct LookaheadLimits {
  int64_t max_cost = std::numeric_limits<int64_t>::max();
  int64_t max_reply_bytes = std::numeric_limits<int64_t>::max();
};
// A window's group value as held until sent: the C++ value, its reply message, its encoding.
inline constexpr int64_t kLookaheadValueBytes = 96;
// Work (in Schedule::step_cost() units) between two checks whether a long call's client is
// still waiting: a few ms.
inline constexpr int64_t kCancelCheckCost = int64_t{1} << 21;

struct ExportedState {
  std::string state_json;
  std::string torch_state_dict_json;
  std::string torch_param_groups_json;
  SessionSnapshot session;
};

struct ListQuery {
  std::string name_prefix;
  Labels labels;            // all must match
  int32_t page_size = 100;  // > 0
  std::string after;        // only names greater than this
};
struct ListPage {
  std::vector<SessionSnapshot> sessions;
  std::string last_name;  // set when more may follow: pass as `after`
};

// How GetSession, GetLR and ListSessions are served.
struct ReadOptions {
  // Shared store only: read the store itself (a linearizable read; one round trip more, and
  // for List every session is read) instead of this replica's memory, which may lag another
  // replica's commits by the change feed's delay. Changes nothing when this process alone
  // writes the store (SQLite).
  bool consistent = false;
};

// The change feed keeping a shared store's sessions fresh in memory (server/registry/feed.cc).
struct FeedOptions {
  // Reads not marked consistent fail UNAVAILABLE once the feed has been broken this long.
  absl::Duration max_staleness = absl::Seconds(5);
};
// What Load does with a record that does not decode.
enum class DamagedRecords {
  kRefuse,      // fail the load, naming the session: the server does not start
  kQuarantine,  // set it aside (see the class comment) and load the others
};
struct LoadOptions {
  DamagedRecords damaged = DamagedRecords::kRefuse;
};

struct FeedStatus {
  bool active = false;   // a feed is running (shared store with a change feed)
  bool healthy = true;   // false while it is broken (store unreachable, re-listing)
  int64_t revision = 0;  // the store revision memory is current to, as far as the feed knows
  absl::Time broken_since = absl::InfinitePast();  // when it broke (if !healthy)
  absl::Status error;                              // why (if !healthy)
};

class Registry {
 public:
  static constexpr size_t kMaxWatchersPerSession = 1024;

  // `store` must outlive the registry.
  Registry(Store* store, int64_t max_sessions);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Loads every stored session (start-up). A record that does not decode fails the load
  // (DATA_LOSS naming the session and its store revision) or is set aside, per `options`.
  // Records of an older format (record_frame.h) are then rewritten in the current one.
  absl::Status Load(const LoadOptions& options = {});
  size_t size() const;
  // Names whose record is set aside as damaged (for metrics and tests).
  size_t damaged_count() const { return damaged_count_.load(std::memory_order_relaxed); }

  // The new session, or the existing one when it has the same spec and labels (a retry).
  absl::StatusOr<SessionSnapshot> Create(const std::string& name, const nlohmann::json& spec,
                                         const Labels& labels);
  absl::StatusOr<SessionSnapshot> Get(const std::string& name, const ReadOptions& options = {});
  absl::StatusOr<ListPage> List(const ListQuery& query, const ReadOptions& options = {});
  absl::Status Delete(const std::string& name, std::optional<int64_t> if_revision);
  // One step; with if_epoch set and different from last_epoch, nothing changes (advanced =
  // false). A step the schedule refuses is FAILED_PRECONDITION.
  absl::StatusOr<StepOutcome> Step(const std::string& name, const StepRequest& request,
                                   std::optional<int64_t> if_epoch);
  // What TryStepAsync decided, and what its `done` reports. Internal to the server: never a
  // status a client sees.
  enum class StepVerdict {
    kAnswered,  // `done` has the answer (TryStepAsync: `done` has run or will run)
    kBlocking,  // no answer: call Step where blocking is fine (it re-reads and decides)
    kHeavy,     // no answer: the step costs more than the caller's threshold (a heavy call)
  };
  // The same step without blocking the calling thread, for a store that commits without
  // blocking its caller (Store::async_commit(): SQLite's group commit, etcd's callback Txn):
  // the step is computed here and `done` runs on the store's thread once the commit is durable
  // (or here, at once, when nothing needs committing: not found, if_epoch mismatch, refused).
  // Answers kHeavy, before computing anything, when the session's step cost as memory holds it
  // exceeds `heavy_cost` (whatever the store). Answers kBlocking without calling `done` when it
  // cannot start without waiting (another mutation of the session in progress; a shared store
  // whose memory is not kept fresh by its change feed, or whose memory answer needs a re-read
  // first; a store without asynchronous commits). kAnswered: `done` runs. On a shared store a
  // lost compare (another replica stepped first) calls `done` with kBlocking (and the commit's
  // status, for logs): the caller must then call Step where blocking is fine.
  // `done` must not block or call back into the registry for this session.
  using StepCallback = std::function<void(StepVerdict, absl::StatusOr<StepOutcome>)>;
  StepVerdict TryStepAsync(const std::string& name, const StepRequest& request,
                           std::optional<int64_t> if_epoch, int64_t heavy_cost, StepCallback done);
  // Values `ahead` steps ahead and a window of `window` epochs, computed on a copy outside the
  // session's lock; `cancelled` is polled during long lookaheads (every few ms of work).
  absl::StatusOr<Lookahead> LookAhead(const std::string& name, int64_t ahead, int32_t window,
                                      const std::function<bool()>& cancelled,
                                      const ReadOptions& options = {},
                                      const LookaheadLimits& limits = {});
  // The session's Schedule::step_cost() as held in memory (no store read: a hint for routing
  // a call, not a read to rely on); NOT_FOUND if memory has no such session.
  absl::StatusOr<int64_t> StepCost(const std::string& name);
  absl::StatusOr<ExportedState> Export(const std::string& name);
  // Creates `name` from `schedule`, or replaces the existing session when `replace`. Labels
  // default to the replaced session's (or none). `if_revision` (with replace): replace only the
  // session at that revision (FAILED_PRECONDITION otherwise, NOT_FOUND if there is none).
  absl::StatusOr<SessionSnapshot> Import(const std::string& name,
                                         std::unique_ptr<Schedule> schedule,
                                         std::optional<Labels> labels, bool replace,
                                         std::optional<int64_t> if_revision = std::nullopt);

  // Amends `name` (amend.cc) as a step mutates it: on a copy, committed, installed, watchers
  // told; a refusal or a failed commit changes nothing. Its work is bounded by `limits` first
  // (RESOURCE_EXHAUSTED naming at_epoch); the engine's refusals keep their code and words.
  absl::StatusOr<AmendOutcome> Amend(const std::string& name, const AmendRequest& request,
                                     const LookaheadLimits& limits,
                                     const std::function<bool()>& cancelled);
  // The record of `name` (history.cc) for `query`, read from a copy outside the session's lock.
  absl::StatusOr<HistoryPage> History(const std::string& name, const HistoryQuery& query,
                                      const std::function<bool()>& cancelled,
                                      const ReadOptions& options = {});

  // Registers `sink`; it receives the current state at once, then every change.
  absl::Status Watch(const std::string& name, std::shared_ptr<WatchSink> sink);
  // Ends every watch (UNAVAILABLE) and refuses new ones; mutations still work until the store
  // closes.
  void Shutdown();

  // Shared stores: subscribes to the store's change feed, starting after the revision Load
  // read (call it after Load). OK and nothing done for an unshared store; UNIMPLEMENTED when
  // the store has no feed (calls then re-read their session, as without one).
  absl::Status StartFeed(const FeedOptions& options);
  // Stops the feed (idempotent); reads re-read the store again. Before the store closes.
  void StopFeed();
  FeedStatus feed_status() const;
  // Whether a read with these options may wait for the store (a consistent read, or a shared
  // store without a running feed); otherwise it only takes in-memory locks. Watch may also
  // re-read once, for a session not in memory yet.
  bool ReadMayBlock(const ReadOptions& options) const {
    return store_->shared() && (options.consistent || !FeedActive());
  }

 private:
  class FeedListener;  // server/registry/feed.cc

  // Two locks per session. `write_mu` serializes the session's mutations: a mutation holds it
  // from reading the current state, through its durable commit, to installing the result.
  // `mu` guards the fields: held only briefly, to read them or to install new values. Fields
  // change only with both held (write_mu first), so holding either one reads them safely;
  // readers take `mu` alone and therefore never wait for a commit in progress (they see the
  // last committed state, which is what an unacknowledged mutation allows). write_mu is a
  // HandoffLock because an asynchronous step (TryStepAsync) releases it on the store's thread.
  struct Entry {
    HandoffLock write_mu ABSL_ACQUIRED_BEFORE(mu);
    absl::Mutex mu;
    bool live ABSL_GUARDED_BY(mu) = false;
    SessionMeta meta ABSL_GUARDED_BY(mu);
    std::unique_ptr<Schedule> schedule ABSL_GUARDED_BY(mu);
    int64_t store_revision ABSL_GUARDED_BY(mu) = 0;
    // Registered and dropped with `mu` alone (not a mutation of the session).
    std::vector<std::shared_ptr<WatchSink>> watchers ABSL_GUARDED_BY(mu);
  };

  // The entry mapped to `name` (live or not), or nullptr.
  std::shared_ptr<Entry> Find(const std::string& name) const;
  // What a call naming a session that has no live entry answers: DATA_LOSS when its record is
  // set aside as damaged, NotFound otherwise.
  absl::Status Missing(const std::string& name) const;
  // The one wording of each: a session that does not exist, and the end of a deleted session's
  // watch streams.
  static absl::Status NotFound(const std::string& name);
  static absl::Status Deleted(const std::string& name);

  // Damaged records (server/registry/damaged.cc). Quarantine sets `name`'s record (at store
  // `revision`) aside, dropping its entry if it had one (watchers end with DATA_LOSS), and logs
  // it once. ClearDamage forgets a damage older than `revision` (a newer good record or a
  // deletion). DeleteDamaged removes a set-aside record from the store.
  struct Damage {
    int64_t revision = 0;
    absl::Status why;  // DATA_LOSS, naming the session
  };
  void Quarantine(const std::string& name, int64_t revision, const absl::Status& why);
  void ClearDamage(const std::string& name, int64_t revision);
  std::optional<Damage> FindDamage(const std::string& name) const;
  absl::Status DeleteDamaged(const std::string& name, const Damage& damage);
  // Rewrites the entries whose records Load read in an older format (server/registry/migrate.cc).
  void MigrateRecords(const std::vector<std::shared_ptr<Entry>>& entries);
  // Maps a new entry for `name`, returned with its write_mu held and live == false (readers
  // treat it as absent); or, when the name is taken, returns nullptr and the existing entry in
  // *existing.
  absl::StatusOr<std::shared_ptr<Entry>> Reserve(const std::string& name,
                                                 std::shared_ptr<Entry>* existing);
  // Drops `e` from the map if it is still the entry for its name.
  void Unmap(const std::string& name, const std::shared_ptr<Entry>& e);
  // The one way a live session leaves memory (deleted, deleted elsewhere, set aside as
  // damaged): marks it not live, ends its watchers with `why`, frees its schedule and unmaps
  // it. Both session locks held (write_mu: no mutation is in flight; mu: readers see the
  // drop whole); takes the map's lock, which comes after them.
  void DropLocked(const std::string& name, const std::shared_ptr<Entry>& e, const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->write_mu, e->mu);
  // Creates the session in a reserved entry (commit, then publish); on failure unmaps it.
  absl::StatusOr<SessionSnapshot> Publish(const std::shared_ptr<Entry>& e, SessionMeta meta,
                                          std::unique_ptr<Schedule> schedule)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->write_mu);
  // Commits `meta` + `schedule` as the entry's new state and installs it; on failure the entry
  // is unchanged.
  absl::StatusOr<SessionSnapshot> CommitPut(Entry& e, SessionMeta meta,
                                            std::unique_ptr<Schedule> schedule)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.write_mu);
  // Installs a committed state (taking e.mu), wakes the watchers, returns the new snapshot.
  SessionSnapshot InstallCommitted(Entry& e, int64_t store_revision, SessionMeta meta,
                                   std::unique_ptr<Schedule> schedule);
  // The first half of a step, with e.write_mu held (server/registry/step.cc): either the answer
  // that needs no commit (`answer`: not found, if_epoch mismatch, refused; with `from_memory`,
  // ABORTED when stale memory could explain it) or the new state to commit.
  struct PendingStep {
    std::optional<absl::StatusOr<StepOutcome>> answer;
    SessionMeta meta;
    std::unique_ptr<Schedule> next;
  };
  static PendingStep BeginStep(const std::string& name, const Entry& e, const StepRequest& request,
                               std::optional<int64_t> if_epoch, bool from_memory);
  // One attempt of Amend; *lost_compare: another replica committed first (re-read, retry).
  absl::StatusOr<AmendOutcome> AmendOnce(const std::string& name, const AmendRequest& request,
                                         const LookaheadLimits& limits,
                                         const std::function<bool()>& cancelled,
                                         bool* lost_compare);
  // Shared stores only (Store::shared(), e.g. etcd with several replicas): re-reads `name`
  // from the store and installs, replaces or drops the in-memory entry accordingly
  // (server/registry/sync.cc). OK and nothing done for a store this process alone writes.
  absl::Status Sync(const std::string& name);
  // Brings `name`'s entry to `rec` (read at rec.read_revision) unless memory holds something
  // at least as new; notifies watchers; drops a session `rec` says is gone. `from_feed`: rec
  // comes from the change feed (in order) rather than from a read racing it.
  absl::Status Install(const std::string& name, const SharedStore::ReadResult& rec, bool from_feed);
  // Before a read: Sync (consistent, or no feed), or check the feed is fresh enough.
  absl::Status PrepareRead(const std::string& name, const ReadOptions& options);
  absl::Status CheckFeedFresh() const;
  bool FeedActive() const { return feed_active_.load(); }
  // The feed's side (server/registry/feed.cc): apply changes; re-list after compaction, returning
  // the revision read; note a health transition.
  void ApplyChanges(const std::vector<SharedStore::Change>& changes);
  absl::StatusOr<int64_t> Reload();
  void SetFeedHealth(const absl::Status& status);
  // While a feed runs: `name` was deleted at `revision`; the feed, which may still be behind
  // it, must not bring back an older state of it meanwhile.
  void Bury(const std::string& name, int64_t revision);
  bool Buried(const std::string& name, int64_t revision) const;
  // ListSessions with consistent = true on a shared store: from a fresh LoadAll.
  absl::StatusOr<ListPage> ListFromStore(const ListQuery& query);
  // A commit that failed; a lost compare is routine with several replicas (debug level).
  void LogCommitFailure(const char* op, const std::string& name, const absl::Status& s) const;
  // `from_memory`: the entry was not re-read first, so a missing session or an if_epoch
  // mismatch may be stale; such outcomes come back ABORTED, for the caller to Sync and retry.
  absl::StatusOr<StepOutcome> StepOnce(const std::string& name, const StepRequest& request,
                                       std::optional<int64_t> if_epoch, bool from_memory);
  void NotifyLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  void EndWatchersLocked(Entry& e, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu);
  // Requires e.mu or e.write_mu (either one keeps the fields it reads from changing).
  static SessionSnapshot SnapshotLocked(const Entry& e);

  Store* const store_;
  const int64_t max_sessions_;

  mutable absl::Mutex map_mu_;
  std::map<std::string, std::shared_ptr<Entry>> sessions_ ABSL_GUARDED_BY(map_mu_);
  bool shutting_down_ ABSL_GUARDED_BY(map_mu_) = false;
  // name -> revision of a deletion the feed may not have applied yet (see Bury).
  std::map<std::string, int64_t> tombstones_ ABSL_GUARDED_BY(map_mu_);
  // Names whose records are set aside; damaged_count_ mirrors its size so that the ordinary
  // not-found path needs no lock while nothing is damaged.
  std::map<std::string, Damage> damaged_ ABSL_GUARDED_BY(map_mu_);
  std::atomic<size_t> damaged_count_{0};

  // The change feed. feed_revision_: the revision of the change the feed is applying or has
  // applied last (or of its last re-list): memory will reflect the store at least as of it,
  // so a read racing the feed that is older must not install what it read (Install).
  absl::Mutex feed_ctl_mu_;  // StartFeed / StopFeed
  std::unique_ptr<SharedStore::ChangeListener> feed_listener_ ABSL_GUARDED_BY(feed_ctl_mu_);
  std::unique_ptr<SharedStore::Subscription> feed_ ABSL_GUARDED_BY(feed_ctl_mu_);
  std::atomic<bool> feed_active_{false};
  std::atomic<int64_t> feed_revision_{0};
  // Reload holds it exclusively, ListFromStore shared: a store's last_load_revision() then
  // belongs to the LoadAll that Reload just ran.
  absl::Mutex load_mu_;
  mutable absl::Mutex feed_mu_;
  FeedStatus feed_state_ ABSL_GUARDED_BY(feed_mu_);
  // feed_state_.healthy, readable without feed_mu_: every read checks it, and one mutex taken
  // by every read of every session would serialize them.
  std::atomic<bool> feed_healthy_{true};
  absl::Duration max_staleness_ ABSL_GUARDED_BY(feed_mu_) = absl::Seconds(5);
};

// Maps a store failure to what the client sees: UNAVAILABLE stays (retryable), a lost
// compare-and-swap is ABORTED, anything else INTERNAL.
absl::Status StoreFailure(const absl::Status& s);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_REGISTRY_H_
