// Copyright lrsched authors.
//
// Store: the narrow interface between lrsched's sessions and durable storage. SQLite (the
// embedded default) and etcd (for several replicas) implement it; the session registry and
// the gRPC service know nothing else about storage.
//
// A store holds opaque records (bytes) under session names. Each record carries a revision:
// a number that changes with every committed mutation of that key (SQLite: a per-key counter;
// etcd: the key's mod_revision). A mutation may name the revision it expects, so that two
// writers can never both win (compare-and-swap); the SQLite store, used by one process, honors
// it the same way.
//
// Invariants: Commit returns OK only after the mutation is durable (committed to disk, or to a
// quorum); concurrent Commit calls may be grouped into one transaction, but each caller learns
// its own outcome. Implementations are thread-safe.
#ifndef LRSCHED_SERVER_STORE_H_
#define LRSCHED_SERVER_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lrsched {

struct Mutation {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string name;
  std::string value;  // for kPut
  // If set, the mutation applies only if the key's current revision equals it (0: the key must
  // not exist). A mismatch is FAILED_PRECONDITION and nothing is written.
  std::optional<int64_t> expected_revision;
};

// Whether a commit failed only because the key's revision was not the expected one: another
// writer got there first. Stores answer FAILED_PRECONDITION (above); the registry reports it to
// its callers as ABORTED (StoreFailure), which counts too. With several replicas this is the
// routine end of a race (re-read and decide again); anything else is a real failure.
inline bool IsLostCompare(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsAborted(s);
}

class Store {
 public:
  virtual ~Store() = default;

  // Applies `m` durably. Returns the key's new revision (for a delete, the revision of the
  // deletion, or 0 where the store has none). NOT_FOUND for deleting a missing key without an
  // expected_revision is not an error: deletes are idempotent.
  virtual absl::StatusOr<int64_t> Commit(const Mutation& m) = 0;

  // Commit without waiting: `done` receives exactly what Commit would have returned, once the
  // mutation is durable or has failed. A store that does not block its caller for the disk
  // (SQLite's group commit) says so with async_commit() and calls `done` on whichever thread
  // writes the batch: its own, another caller's, or this caller's before CommitAsync returns.
  // `done` must then be quick, must not call Commit (it runs on the thread that commits) and
  // must not wait for a lock the caller of CommitAsync may hold. The default runs Commit in
  // the calling thread, which blocks it.
  using CommitCallback = std::function<void(absl::StatusOr<int64_t>)>;
  virtual void CommitAsync(Mutation m, CommitCallback done) { done(Commit(m)); }
  virtual bool async_commit() const { return false; }

  // Calls `fn` for every stored record (start-up load). Stops at the first error `fn` returns.
  // `name` and `value` are valid only during the call: copy what you keep.
  virtual absl::Status LoadAll(
      const std::function<absl::Status(std::string_view name, std::string_view value,
                                       int64_t revision)>& fn) = 0;

  // Flushes and stops accepting commits (graceful shutdown). Later Commits fail UNAVAILABLE.
  virtual void Close() = 0;

  // --- For stores shared by several lrsched processes (etcd); optional for the others. ---
  //
  // True when other processes may write the same records (etcd): the registry then re-reads
  // a session (Read) before serving it and after a lost compare-and-swap, instead of trusting
  // its memory. False (SQLite, the default): this process is the only writer.
  virtual bool shared() const { return false; }
  // One record as stored now (a linearizable read where the store is replicated).
  struct ReadResult {
    bool found = false;
    std::string value;
    int64_t revision = 0;       // the record's revision when found
    int64_t read_revision = 0;  // the store's revision the read saw (0 where it has none)
  };
  virtual absl::StatusOr<ReadResult> Read(std::string_view name) {
    (void)name;
    return absl::UnimplementedError("this store does not read single records");
  }

  // Counters for metrics and benchmarks.
  struct Stats {
    int64_t commits = 0;       // mutations committed
    int64_t transactions = 0;  // transactions (group-commit batches) that carried them
  };
  virtual Stats stats() const = 0;

  // --- Change feed: optional, for shared stores that can push changes (etcd's Watch). ---
  //
  // Lets a replica keep its in-memory sessions fresh without re-reading each one before use.
  // A store without a feed answers Subscribe UNIMPLEMENTED; the registry then re-reads.

  // One committed change of one record.
  struct Change {
    bool deleted = false;
    std::string name;
    std::string value;     // the new record (puts only)
    int64_t revision = 0;  // the put's new revision, or the deletion's revision
  };
  // Receives a feed's reports, from the feed's own thread, one call at a time. Calls may block
  // (briefly: they take session locks) but must not destroy the Subscription.
  class ChangeListener {
   public:
    virtual ~ChangeListener() = default;
    // Changes committed after the subscription's starting revision, in commit order; a feed
    // that resumes after a break neither repeats nor skips any.
    virtual void OnChanges(const std::vector<Change>& changes) = 0;
    // The store no longer has the history the feed needs (etcd: compacted): re-read every
    // record (LoadAll) and return last_load_revision(); the feed continues after it. An error
    // leaves the feed broken; it asks again later.
    virtual absl::StatusOr<int64_t> OnResync() = 0;
    // The feed broke (not OK: why) or works again (OK). Called on transitions only.
    virtual void OnFeedHealth(const absl::Status& status) = 0;
  };
  // A running feed. Destroying it stops the feed and waits until the listener is no longer
  // called.
  class Subscription {
   public:
    virtual ~Subscription() = default;
  };
  // Starts feeding `listener` (which must outlive the Subscription) every change committed
  // after `after_revision`. The feed reconnects by itself; it reports through OnFeedHealth.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(int64_t after_revision,
                                                                  ChangeListener* listener) {
    (void)after_revision;
    (void)listener;
    return absl::UnimplementedError("this store has no change feed");
  }
  // The store revision the last successful LoadAll read at, where a feed starts (0: none).
  virtual int64_t last_load_revision() const { return 0; }
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_STORE_H_
