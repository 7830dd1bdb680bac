// Copyright lrsched authors.
//
// EtcdWatch: the etcd store's change feed (SharedStore::Subscribe): one etcd v3 Watch stream over
// every key under a prefix, kept open by a thread of its own, reporting each committed put and
// delete to a SharedStore::ChangeListener in revision order.
//
// It remembers the revision of the last event it delivered; when the stream breaks (etcd
// stopped, member gone, network) it reconnects with a bounded exponential backoff, trying the
// endpoints in turn, and resumes at that revision + 1, so the listener sees no gap and no
// repeat. When etcd has compacted that revision away (the watch answers compact_revision != 0
// and is canceled) the history is gone: it asks the listener to re-list (OnResync) and resumes
// after the revision the re-list read. One warning is logged per outage (when the stream first
// breaks) and one info line when it works again; the retries in between log at debug.
//
// The stream asks etcd to cancel it when its member loses the raft leader ("hasleader"), so a
// member cut off from the cluster cannot keep serving a silently frozen feed.
//
// The stream uses gRPC's callback API (EtcdWatchStream), waited for on a mutex of our own: a
// thread blocked in a synchronous gRPC read becomes one of gRPC's pollers and would slow down
// the server's calls (see server/store/etcd/watch_stream.h).
//
// Invariants: the listener is called from the watch thread only, one call at a time, never
// after the destructor returns; events are delivered at most once and in order.
#ifndef LRSCHED_SERVER_ETCD_WATCH_H_
#define LRSCHED_SERVER_ETCD_WATCH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "server/store/shared_store.h"

namespace lrsched {

class EtcdWatch final : public SharedStore::Subscription {
 public:
  struct Options {
    // (address, channel) per etcd member; the first is tried first.
    std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>> endpoints;
    std::string prefix;  // non-empty
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(2);
  };

  // Starts the thread; the first stream starts at after_revision + 1.
  static std::unique_ptr<EtcdWatch> Start(Options options, int64_t after_revision,
                                          SharedStore::ChangeListener* listener);
  // Cancels the stream and joins the thread.
  ~EtcdWatch() override;
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

 private:
  enum class StreamEnd { kBroken, kCompacted, kStopped };

  EtcdWatch(Options options, int64_t after_revision, SharedStore::ChangeListener* listener);
  void Run();
  // One Watch stream on endpoint `i`, until it breaks (*why says how), etcd reports the start
  // revision compacted, or the watch is stopped.
  StreamEnd RunStream(size_t i, absl::Status* why);
  void MarkHealthy();
  void MarkBroken(const absl::Status& why);
  // Sleeps `d` unless stopped first; false when stopped.
  bool SleepUnlessStopped(absl::Duration d);
  bool stopped() const;

  const Options options_;
  const std::string range_end_;
  SharedStore::ChangeListener* const listener_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream's context

  // Watch thread only.
  int64_t next_revision_;  // where the next stream starts
  bool healthy_ = true;    // the listener's data was fresh when the feed started
  absl::Time broken_since_;
  std::thread thread_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_ETCD_WATCH_H_
