// Copyright lrsched authors.
//
// HandoffLock: a mutual-exclusion lock that the thread taking it may hand over to another
// thread to release. A session's mutation takes its lock on the thread that received the call
// and, with an asynchronous commit, releases it on the store's thread once the commit is
// durable; absl::Mutex requires the releasing thread to be the one that locked it (its debug
// build checks this), so it cannot serve here.
//
//   HandoffLock lock;
//   { HandoffLock::Hold h(&lock); ... }          // blocking, scoped
//   if (lock.TryLock()) { ...; lock.Unlock(); }  // Unlock may run on any thread
//
// Invariants: at most one holder; Lock waits (it never spins) and TryLock never waits. Not
// reentrant. No fairness guarantee beyond absl::Mutex's.
#ifndef LRSCHED_SERVER_HANDOFF_LOCK_H_
#define LRSCHED_SERVER_HANDOFF_LOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lrsched {

class ABSL_LOCKABLE HandoffLock {
 public:
  HandoffLock() = default;
  HandoffLock(const HandoffLock&) = delete;
  HandoffLock& operator=(const HandoffLock&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
    held_ = true;
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    absl::MutexLock l(&mu_);
    if (held_) return false;
    held_ = true;
    return true;
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    absl::MutexLock l(&mu_);
    held_ = false;
  }

  // Holds the lock for a scope.
  class ABSL_SCOPED_LOCKABLE Hold {
   public:
    explicit Hold(HandoffLock* lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) {
      lock_->Lock();
    }
    ~Hold() ABSL_UNLOCK_FUNCTION() { lock_->Unlock(); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    HandoffLock* const lock_;
  };

 private:
  absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_HANDOFF_LOCK_H_
