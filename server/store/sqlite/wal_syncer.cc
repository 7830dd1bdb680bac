// Copyright lrsched authors.
#include "server/store/sqlite/wal_syncer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "server/ops/log.h"

namespace lrsched::sqlite_internal {

WalSyncer::WalSyncer(std::string wal_path, std::atomic<int64_t>* syncs)
    : wal_path_(std::move(wal_path)), syncs_(syncs) {
  thread_ = std::thread([this] { Run(); });
}

WalSyncer::~WalSyncer() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
  if (fd_ >= 0) close(fd_);
}

void WalSyncer::Request() {
  absl::MutexLock l(&mu_);
  requested_ = true;
}

void WalSyncer::Run() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &WalSyncer::WantsWork));
      if (stop_) return;
      requested_ = false;
    }
    if (fd_ < 0) {
      fd_ = open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) {
        // No WAL yet is normal before the first write; anything else only costs the
        // checkpoint its own, longer, sync.
        if (errno != ENOENT) {
          logging::Warning("wal_sync_failed")
              .Kv("path", wal_path_)
              .Kv("error", std::strerror(errno));
        }
        continue;
      }
    }
    if (fdatasync(fd_) != 0) {
      logging::Warning("wal_sync_failed").Kv("path", wal_path_).Kv("error", std::strerror(errno));
      continue;
    }
    syncs_->fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace lrsched::sqlite_internal
