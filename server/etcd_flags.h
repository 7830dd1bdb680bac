// Copyright lrsched authors.
//
// The server's storage-selection flags (--store=sqlite|etcd and the --etcd_* flags), kept
// beside the etcd store so server_main.cc only asks "which store?" and "open the etcd one".
#ifndef LRSCHED_SERVER_ETCD_FLAGS_H_
#define LRSCHED_SERVER_ETCD_FLAGS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/etcd_store.h"

namespace lrsched {

// true for --store=etcd, false for --store=sqlite (the default); INVALID_ARGUMENT otherwise.
absl::StatusOr<bool> StoreFlagIsEtcd();
// Opens the EtcdStore the --etcd_* flags describe (it contacts etcd only when loading).
absl::StatusOr<std::unique_ptr<EtcdStore>> OpenEtcdStoreFromFlags();
// --etcd_max_staleness: how long reads may be served from memory while the change feed from
// etcd is broken (ServerConfig::max_staleness); INVALID_ARGUMENT unless positive.
absl::StatusOr<absl::Duration> EtcdMaxStalenessFromFlags();

}  // namespace lrsched

#endif  // LRSCHED_SERVER_ETCD_FLAGS_H_
