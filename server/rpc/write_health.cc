// Copyright lrsched authors.
#include "server/rpc/write_health.h"

#include "server/ops/log.h"

namespace lrsched {

void WriteHealth::Change(bool failing) const {
  absl::MutexLock l(&mu_);
  if (failing_.load(std::memory_order_relaxed) == failing) return;  // another call did it
  failing_.store(failing, std::memory_order_relaxed);
  if (failing) {
    logging::Warning("store_not_writable").Kv("health", "NOT_SERVING");
  } else {
    logging::Info("store_writable").Kv("health", "SERVING");
  }
  on_change_(!failing);
}

}  // namespace lrsched
