// Copyright lrsched authors.
//
// WorkerPool: a fixed set of threads that run the service's calls that may block (a mutation
// waiting for its durable commit, a read that goes to a shared store, a long simulation), so
// that gRPC's callback threads only ever run short, non-blocking work.
//
//   WorkerPool pool({.threads = 64, .max_queued = 4096});
//   if (!pool.Submit([] { ... })) { /* queue full or shut down: refuse the call */ }
//   pool.Shutdown();  // runs what was queued, then joins
//
// Sizing. Blocked workers are what lets SQLite's group commit batch: with N workers at most N
// commits can wait together. A bounded queue in front of them turns overload into a prompt
// refusal (the service answers RESOURCE_EXHAUSTED) instead of unbounded memory and latency.
//
// Invariants: tasks start in the order they were submitted, each exactly once, on a pool
// thread; after Shutdown returns every accepted task has run and Submit returns false.
#ifndef LRSCHED_SERVER_WORKER_POOL_H_
#define LRSCHED_SERVER_WORKER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lrsched {

class WorkerPool {
 public:
  struct Options {
    int threads = 64;          // >= 1
    size_t max_queued = 4096;  // tasks waiting for a thread; more are refused
  };

  explicit WorkerPool(Options options);
  ~WorkerPool();  // Shutdown()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false (and `task` dropped unrun) when the queue is full or the pool is
  // shutting down.
  bool Submit(std::function<void()> task);

  // Stops accepting tasks, lets the threads finish everything queued, and joins them.
  // Idempotent; must not be called from a pool thread.
  void Shutdown();

  // Tasks queued and not yet started; tasks running now. For metrics.
  size_t queued() const;
  int64_t busy() const;

 private:
  void Loop();
  bool HasTaskOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  int64_t busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex join_mu_;  // serializes Shutdown
  std::vector<std::thread> threads_;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_WORKER_POOL_H_
