// Copyright lrsched authors.
#include "server/etcd_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, store, "sqlite",
          "where sessions live: sqlite (embedded, one process, --data_dir) or etcd (several "
          "replicas share them, --etcd_endpoints)");
ABSL_FLAG(std::string, etcd_endpoints, "127.0.0.1:2379",
          "comma-separated host:port of etcd members (all are used, failing over between them)");
ABSL_FLAG(std::string, etcd_prefix, "/lrsched/", "etcd key prefix holding the sessions");
ABSL_FLAG(absl::Duration, etcd_timeout, absl::Seconds(5), "deadline of each etcd call");
ABSL_FLAG(std::string, etcd_tls_ca, "", "PEM CA file: talk TLS to etcd, verifying it");
ABSL_FLAG(std::string, etcd_tls_cert, "", "PEM client certificate for etcd (with --etcd_tls_ca)");
ABSL_FLAG(std::string, etcd_tls_key, "", "PEM private key for --etcd_tls_cert");
ABSL_FLAG(absl::Duration, etcd_max_staleness, absl::Seconds(5),
          "reads are served from memory, kept fresh by a watch on etcd; once that watch has been "
          "broken this long they fail UNAVAILABLE (reads with consistent=true always ask etcd)");

namespace lrsched {

absl::StatusOr<bool> StoreFlagIsEtcd() {
  const std::string store = absl::GetFlag(FLAGS_store);
  if (store == "sqlite") return false;
  if (store == "etcd") return true;
  return absl::InvalidArgumentError("--store: sqlite or etcd");
}

absl::StatusOr<std::unique_ptr<EtcdStore>> OpenEtcdStoreFromFlags() {
  EtcdStore::Options o;
  for (absl::string_view e :
       absl::StrSplit(absl::GetFlag(FLAGS_etcd_endpoints), ',', absl::SkipWhitespace())) {
    o.endpoints.emplace_back(e);
  }
  o.prefix = absl::GetFlag(FLAGS_etcd_prefix);
  o.timeout = absl::GetFlag(FLAGS_etcd_timeout);
  o.tls_ca_file = absl::GetFlag(FLAGS_etcd_tls_ca);
  o.tls_cert_file = absl::GetFlag(FLAGS_etcd_tls_cert);
  o.tls_key_file = absl::GetFlag(FLAGS_etcd_tls_key);
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--etcd_timeout must be positive");
  }
  return EtcdStore::Open(o);
}

absl::StatusOr<absl::Duration> EtcdMaxStalenessFromFlags() {
  const absl::Duration d = absl::GetFlag(FLAGS_etcd_max_staleness);
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--etcd_max_staleness must be positive");
  }
  return d;
}

}  // namespace lrsched
