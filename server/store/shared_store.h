// Copyright lrsched authors.
//
// SharedStore: the one capability a Store may have beyond its core (store.h): other processes
// (lrsched replicas) write the same records. Such a store lets a replica read one record as it
// is stored now, and may push every committed change (a change feed), so that the replica's
// sessions in memory stay fresh. EtcdStore is one; SqliteStore, written by one process only,
// is not. Callers ask with Store::shared(), which a SharedStore answers with itself.
//
// Invariants (besides the core's): Read is linearizable where the store is replicated; a feed
// reports every change committed after its starting revision exactly once, in commit order,
// also across reconnects; revisions are comparable across keys (one store-wide counter), so
// that a read and a change can be ordered.
#ifndef LRSCHED_SERVER_STORE_SHARED_STORE_H_
#define LRSCHED_SERVER_STORE_SHARED_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/store/store.h"

namespace lrsched {

class SharedStore : public Store {
 public:
  // The registry re-reads a session (Read) before serving it and after a lost
  // compare-and-swap, or keeps it fresh from the feed, instead of trusting its memory.
  SharedStore* shared() final { return this; }

  // One record as stored now.
  struct ReadResult {
    bool found = false;
    std::string value;
    int64_t revision = 0;       // the record's revision when found
    int64_t read_revision = 0;  // the store's revision the read saw
  };
  virtual absl::StatusOr<ReadResult> Read(std::string_view name) = 0;

  // The store revision the last successful LoadAll read at: where a feed starts (0: no
  // LoadAll yet).
  virtual int64_t last_load_revision() const = 0;

  // --- The change feed (etcd's Watch) ---

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
                                                                  ChangeListener* listener) = 0;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_STORE_SHARED_STORE_H_
