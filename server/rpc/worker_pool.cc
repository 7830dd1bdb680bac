// Copyright lrsched authors.
#include "server/rpc/worker_pool.h"

#include <algorithm>
#include <utility>

namespace lrsched {

WorkerPool::WorkerPool(Options options) : options_(options) {
  const int n = std::max(1, options_.threads);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() { Shutdown(); }

bool WorkerPool::Submit(std::function<void()> task) {
  absl::MutexLock l(&mu_);
  if (stopping_ || queue_.size() >= options_.max_queued) return false;
  queue_.push_back(std::move(task));
  return true;
}

bool WorkerPool::HasTaskOrStopping() const { return !queue_.empty() || stopping_; }

void WorkerPool::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &WorkerPool::HasTaskOrStopping));
      // Stopping still drains: every accepted task owns a call that must be answered.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    task();
    absl::MutexLock l(&mu_);
    --busy_;
  }
}

void WorkerPool::Shutdown() {
  absl::MutexLock j(&join_mu_);
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

size_t WorkerPool::queued() const {
  absl::MutexLock l(&mu_);
  return queue_.size();
}

int64_t WorkerPool::busy() const {
  absl::MutexLock l(&mu_);
  return busy_;
}

}  // namespace lrsched
