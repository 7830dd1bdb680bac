// Copyright lrsched authors.
//
// WriteHealth: whether the store is taking writes, as the mutations' outcomes tell it, for the
// standard health service (grpc.health.v1): a mutation that fails UNAVAILABLE (the store
// cannot write: disk full, an I/O error, etcd unreachable) reports "not writable"; the next
// mutation that writes reports "writable" again. Reads are not judged: they keep working from
// memory while the disk is full.
//
// It only watches outcomes, so it never delays or changes a call; a call that succeeds while
// nothing is failing costs one relaxed atomic load.
//
// Invariants: `on_change` is called only on a change (false, true, false, ...; never twice in
// a row with the same value), one call at a time and in the order the changes were decided;
// it must not call back into WriteHealth. Thread-safe.
#ifndef LRSCHED_SERVER_WRITE_HEALTH_H_
#define LRSCHED_SERVER_WRITE_HEALTH_H_

#include <atomic>
#include <functional>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/status_code_enum.h"
#include "server/ops/access_log.h"

namespace lrsched {

class WriteHealth {
 public:
  // `on_change(writable)`; empty: nothing is watched.
  explicit WriteHealth(std::function<void(bool writable)> on_change)
      : on_change_(std::move(on_change)) {}

  // A finished call of `method` (the LrScheduler method's short name) with status `code`;
  // `wrote`: false for a success that wrote nothing (a Step that did not advance).
  void Note(std::string_view method, grpc::StatusCode code, bool wrote) const {
    if (!on_change_) return;
    if (code == grpc::StatusCode::OK) {
      if (!wrote || !failing_.load(std::memory_order_relaxed)) return;
    } else if (code != grpc::StatusCode::UNAVAILABLE) {
      return;  // the caller's mistake, a refusal or overload: says nothing about the store
    }
    if (!IsMutation(method)) return;
    Change(/*failing=*/code != grpc::StatusCode::OK);
  }

 private:
  void Change(bool failing) const;

  const std::function<void(bool)> on_change_;
  mutable absl::Mutex mu_;  // held while on_change_ runs: changes are reported in order
  mutable std::atomic<bool> failing_{false};  // written under mu_
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_WRITE_HEALTH_H_
