// Copyright lrsched authors.
//
// EtcdStore: the Store for several lrsched replicas, keeping each session as one etcd key
// <prefix><name> and talking to etcd's v3 gRPC API (proto/etcd/, a subset of etcd 3.4's) with
// the project's own gRPC: no etcd client library, no HTTP gateway.
//
// Revisions are etcd's mod_revision of the key: global to the etcd cluster, so a key's
// revisions grow but not by one (the SQLite store counts per key). Every Commit is one etcd
// Txn: with an expected_revision it compares MOD == expected (0: CREATE == 0, the key must not
// exist) and puts or deletes only if that holds; otherwise it reads the key in the same Txn to
// say which revision won, and answers FAILED_PRECONDITION. Commit returns the Txn's header
// revision, which is the key's new mod_revision (for a delete: the deletion's revision, or 0
// when there was nothing to delete).
//
// Change feed: Subscribe runs an etcd Watch over the prefix on its own stream and thread
// (EtcdWatch, server/store/etcd/watch.h), sharing this store's channels.
//
// Endpoints: all are used. Calls go to the current endpoint; when it is unreachable
// (UNAVAILABLE) the call is retried once on each other endpoint and the first that answers
// becomes current. A retried Commit is safe because lrsched always commits with an
// expected_revision: if the first attempt did reach etcd, the retry loses the compare and the
// caller reloads, never applies twice. A deadline that expires is not retried (the outcome is
// unknown) and is reported UNAVAILABLE, which lrsched never acknowledges.
//
// Invariants: OK from Commit means etcd committed the Txn (a quorum has it in its log);
// thread-safe; after Close, Commit and LoadAll fail UNAVAILABLE.
#ifndef LRSCHED_SERVER_ETCD_STORE_H_
#define LRSCHED_SERVER_ETCD_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "server/store/shared_store.h"

namespace lrsched {

class EtcdStore final : public SharedStore {
 public:
  struct Options {
    std::vector<std::string> endpoints;         // host:port, at least one
    std::string prefix = "/lrsched/";           // non-empty; every key lives under it
    absl::Duration timeout = absl::Seconds(5);  // per etcd call
    // TLS to etcd: a CA file turns it on; a client certificate and key are optional (mTLS).
    std::string tls_ca_file;
    std::string tls_cert_file;
    std::string tls_key_file;
  };

  // Validates the options and creates the channels; does not contact etcd (LoadAll does), so
  // a replica can start while etcd is still coming up and fail its load instead.
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Open(const Options& options);

  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  absl::StatusOr<int64_t> Commit(const Mutation& m) override;
  // The same Txn on gRPC's callback API: no thread waits for etcd. `done` runs on a gRPC
  // thread (or in this call, when the store is closed), failing over between endpoints as
  // Commit does.
  void CommitAsync(Mutation m, CommitCallback done) override;
  bool async_commit() const override { return true; }
  // A linearizable snapshot of every key under the prefix, in name order, read in pages at one
  // etcd revision (see last_load_revision()).
  absl::Status LoadAll(
      const std::function<absl::Status(std::string_view name, std::string_view value,
                                       int64_t revision)>& fn) override;
  void Close() override;
  Stats stats() const override;
  // A linearizable Range of the one key.
  absl::StatusOr<ReadResult> Read(std::string_view name) override;

  // The etcd revision the last successful LoadAll read at: where a watch resumes.
  int64_t last_load_revision() const override { return last_load_revision_.load(); }
  // An etcd Watch on the prefix (server/store/etcd/watch.h), from the current endpoint, failing
  // over to the others while it cannot connect.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(int64_t after_revision,
                                                          ChangeListener* listener) override;
  const std::string& prefix() const { return options_.prefix; }

 private:
  struct Endpoint;
  explicit EtcdStore(Options options);

  // Runs `call` (one unary KV call with a fresh context) on the current endpoint, failing
  // over to the others on UNAVAILABLE. Returns the absl form of the last gRPC status.
  absl::Status Call(const char* what,
                    const std::function<grpc::Status(etcdserverpb::KV::Stub& kv,
                                                     grpc::ClientContext* ctx)>& call);
  std::string Key(std::string_view name) const;
  // What a failed call on `ep` means: UNAVAILABLE (adding to `failures`, so another member
  // is worth a try) naming every member tried so far, or the final error.
  absl::Status Classify(const char* what, const Endpoint& ep, const grpc::Status& s,
                        std::vector<std::string>* failures) const;
  etcdserverpb::TxnRequest TxnFor(const Mutation& m) const;
  absl::StatusOr<int64_t> TxnResult(const Mutation& m, const etcdserverpb::TxnResponse& resp);
  struct AsyncTxn;
  void StartTxn(AsyncTxn* t);
  void OnTxnDone(AsyncTxn* t, const grpc::Status& s);

  const Options options_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::atomic<size_t> current_{0};
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> transactions_{0};
  std::atomic<int64_t> last_load_revision_{0};
  absl::Mutex async_mu_;
  int64_t async_in_flight_ ABSL_GUARDED_BY(async_mu_) = 0;  // Close waits for 0
};

// The exclusive end of etcd's key range holding every key that starts with `prefix`.
std::string EtcdPrefixEnd(const std::string& prefix);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_ETCD_STORE_H_
