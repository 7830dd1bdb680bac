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
//
// Store is the core every backend has. A store that other processes write too (etcd) is also a
// SharedStore (shared_store.h), which adds single-record reads and a change feed; Store::shared()
// is how a caller asks. The contract suites in store/testing/store_contract.h check both.
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

class SharedStore;  // server/store/shared_store.h: the one optional capability

// The core every store has: commit (blocking or not), load everything, close, count. What a
// store can do beyond it is a capability, asked for with shared(), never a method that answers
// UNIMPLEMENTED.
class Store {
 public:
  virtual ~Store() = default;

  // Applies `m` durably. Returns the key's new revision (for a delete, the revision of the
  // deletion, or 0 where the store has none). NOT_FOUND for deleting a missing key without an
  // expected_revision is not an error: deletes are idempotent. After Close: UNAVAILABLE.
  virtual absl::StatusOr<int64_t> Commit(const Mutation& m) = 0;

  // Commit without waiting: `done` receives exactly what Commit would have returned, once the
  // mutation is durable or has failed; it is called exactly once. A store that does not block
  // its caller for the disk (SQLite's group commit, etcd's callback Txn) says so with
  // async_commit() and calls `done` on whichever thread writes the batch: its own, another
  // caller's, or this caller's before CommitAsync returns. `done` must then be quick, must not
  // call Commit (it runs on the thread that commits) and must not wait for a lock the caller of
  // CommitAsync may hold; it may call CommitAsync again.
  //
  // The default runs Commit in the calling thread, which blocks it, and async_commit() stays
  // false so that callers know (the registry then keeps such commits off threads that must not
  // block). It is a complete implementation, not a stub: a store whose writes are synchronous
  // anyway (the in-memory fake, a test's wrapper) needs nothing more, which is why both stay in
  // the core rather than becoming a second capability.
  using CommitCallback = std::function<void(absl::StatusOr<int64_t>)>;
  virtual void CommitAsync(Mutation m, CommitCallback done) { done(Commit(m)); }
  virtual bool async_commit() const { return false; }

  // Calls `fn` for every stored record, in name order (start-up load), with its revision (> 0;
  // the registry sets aside a record whose is not). Stops at the first error `fn` returns and
  // returns it. `name` and `value` are valid only during the call. After Close: UNAVAILABLE.
  virtual absl::Status LoadAll(
      const std::function<absl::Status(std::string_view name, std::string_view value,
                                       int64_t revision)>& fn) = 0;

  // Flushes and stops accepting commits (graceful shutdown). Later Commits fail UNAVAILABLE.
  // Idempotent.
  virtual void Close() = 0;

  // Counters for metrics and benchmarks.
  struct Stats {
    int64_t commits = 0;       // mutations committed
    int64_t transactions = 0;  // transactions (group-commit batches) that carried them
  };
  virtual Stats stats() const = 0;

  // The capability query: the SharedStore face of this store (itself) when other processes may
  // write the same records (etcd), nullptr when this process is the only writer (SQLite, the
  // default). Callers that need Read or Subscribe write `if (SharedStore* s = store->shared())`.
  // The answer never changes over the store's life.
  virtual SharedStore* shared() { return nullptr; }
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_STORE_H_
