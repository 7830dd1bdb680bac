// Copyright lrsched authors.
//
// etcd_load: loadgen's bare etcd modes (bench/loadgen.cc --rpc=etcd_txn / etcd_put), the
// ceiling for lrsched's Step on the etcd backend (bench/run_etcd_bench.sh). Calls go straight
// to etcd's v3 KV API (proto/etcd/, the subset server/store/etcd/etcd_store.cc uses) through the
// same closed loop (bench/closed_loop.h) as lrsched's RPCs.
//
//   etcd_txn: each call is one Txn shaped like EtcdStore::Commit of a Step: compare the key's
//             mod_revision with the one this slot saw last, on success put the value, on
//             failure range the key (the lost compare is counted as an error, and the revision
//             read is remembered).
//   etcd_put: each call is one plain Put of the value.
// Keys are `<prefix><i>`, i < sessions; slot s uses keys s, s + C, s + 2C, ... in turn
// (C = concurrency), as loadgen's Step does with sessions, so no two calls touch one key.
// Before the loop one Range over the prefix learns the keys' current revisions.
#ifndef LRSCHED_BENCH_ETCD_LOAD_H_
#define LRSCHED_BENCH_ETCD_LOAD_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bench/closed_loop.h"
#include "grpcpp/grpcpp.h"

namespace lrsched_bench {

struct EtcdLoadOptions {
  std::string rpc;  // etcd_txn or etcd_put
  int concurrency = 1;
  int sessions = 1;    // keys
  std::string prefix;  // keys are prefix + i
  int value_bytes = 0;
  // When not empty: Range this key first and use its value's size (lrsched's own record).
  std::string value_like;
};

// Runs the load; false (with a message on stderr) when the set-up calls fail.
bool RunEtcdLoad(const EtcdLoadOptions& o,
                 const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                 std::chrono::milliseconds warmup, std::chrono::milliseconds duration,
                 std::chrono::milliseconds drain, RunResult* result, int* value_bytes_used);

}  // namespace lrsched_bench

#endif  // LRSCHED_BENCH_ETCD_LOAD_H_
