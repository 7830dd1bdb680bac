// Copyright lrsched authors.
#include "bench/etcd_load.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <utility>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace lrsched_bench {
namespace {

namespace pb = ::etcdserverpb;

// etcd's "prefix" range end (as server/store/etcd/etcd_store.cc's EtcdPrefixEnd).
std::string PrefixEnd(std::string p) {
  while (!p.empty()) {
    unsigned char c = static_cast<unsigned char>(p.back());
    if (c < 0xff) {
      p.back() = static_cast<char>(c + 1);
      return p;
    }
    p.pop_back();
  }
  return std::string(1, '\0');
}

bool Range(pb::KV::Stub& kv, pb::RangeRequest req, pb::RangeResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status st = kv.Range(&ctx, req, resp);
  if (!st.ok()) {
    std::fprintf(stderr, "loadgen: etcd Range %s: %s\n", req.key().c_str(),
                 st.error_message().c_str());
  }
  return st.ok();
}

// Key index of the slot's seq-th call: the slot's own keys slot, slot + c, ... < n in turn
// (the same walk as loadgen's Step).
int64_t KeyIndex(int slot, int64_t seq, int c, int n) {
  const int64_t per_slot = std::max<int64_t>(1, (n - slot + c - 1) / c);
  return (slot + (seq % per_slot) * c) % n;
}

}  // namespace

bool RunEtcdLoad(const EtcdLoadOptions& o,
                 const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                 std::chrono::milliseconds warmup, std::chrono::milliseconds duration,
                 std::chrono::milliseconds drain, RunResult* result, int* value_bytes_used) {
  std::vector<std::unique_ptr<pb::KV::Stub>> stubs;
  for (auto& ch : channels) stubs.push_back(pb::KV::NewStub(ch));
  const int n = o.sessions, c = o.concurrency;

  int value_bytes = o.value_bytes;
  if (!o.value_like.empty()) {
    pb::RangeRequest req;
    req.set_key(o.value_like);
    pb::RangeResponse resp;
    if (!Range(*stubs[0], req, &resp)) return false;
    if (resp.kvs_size() == 0) {
      std::fprintf(stderr, "loadgen: --value_like key %s not found\n", o.value_like.c_str());
      return false;
    }
    value_bytes = static_cast<int>(resp.kvs(0).value().size());
  }
  *value_bytes_used = value_bytes;
  const std::string value(static_cast<size_t>(value_bytes), 'v');
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(o.prefix + std::to_string(i));

  if (o.rpc == "etcd_put") {
    ClosedLoop<pb::PutRequest, pb::PutResponse> loop(
        c,
        [&](int slot, grpc::ClientContext* ctx, const pb::PutRequest* req, pb::PutResponse* resp,
            std::function<void(grpc::Status)> done) {
          stubs[slot % stubs.size()]->async()->Put(ctx, req, resp, std::move(done));
        },
        [&](int slot, int64_t seq, pb::PutRequest* req) {
          if (seq == 0) req->set_value(value);
          req->set_key(keys[static_cast<size_t>(KeyIndex(slot, seq, c, n))]);
        });
    *result = loop.Run(warmup, duration, drain);
    return true;
  }

  // etcd_txn: every key's mod_revision as last seen (0: absent), from one keys-only Range.
  // Each key belongs to one slot (sessions >= concurrency), which has one call outstanding.
  std::unique_ptr<std::atomic<int64_t>[]> rev(new std::atomic<int64_t>[static_cast<size_t>(n)]);
  for (int i = 0; i < n; ++i) rev[i].store(0);
  {
    pb::RangeRequest req;
    req.set_key(o.prefix);
    req.set_range_end(PrefixEnd(o.prefix));
    req.set_keys_only(true);
    pb::RangeResponse resp;
    if (!Range(*stubs[0], req, &resp)) return false;
    for (const auto& kv : resp.kvs()) {
      const std::string suffix = kv.key().substr(o.prefix.size());
      char* end = nullptr;
      const long i = std::strtol(suffix.c_str(), &end, 10);
      if (end != suffix.c_str() && *end == '\0' && i >= 0 && i < n) rev[i] = kv.mod_revision();
    }
  }
  std::vector<int64_t> current(static_cast<size_t>(c), 0);  // key of each slot's call
  ClosedLoop<pb::TxnRequest, pb::TxnResponse> loop(
      c,
      [&](int slot, grpc::ClientContext* ctx, const pb::TxnRequest* req, pb::TxnResponse* resp,
          std::function<void(grpc::Status)> done) {
        const int64_t i = current[static_cast<size_t>(slot)];
        stubs[slot % stubs.size()]->async()->Txn(
            ctx, req, resp, [&rev, i, resp, done = std::move(done)](grpc::Status st) {
              if (st.ok()) {
                if (resp->succeeded()) {
                  rev[i] = resp->header().revision();  // the put's revision: the key's mod
                } else {
                  int64_t have = 0;
                  if (resp->responses_size() > 0 &&
                      resp->responses(0).response_range().kvs_size() > 0) {
                    have = resp->responses(0).response_range().kvs(0).mod_revision();
                  }
                  rev[i] = have;
                  st = grpc::Status(grpc::StatusCode::ABORTED, "etcd Txn compare lost");
                }
              }
              done(st);
            });
      },
      [&](int slot, int64_t seq, pb::TxnRequest* req) {
        const int64_t i = KeyIndex(slot, seq, c, n);
        current[static_cast<size_t>(slot)] = i;
        const std::string& key = keys[static_cast<size_t>(i)];
        req->Clear();
        pb::Compare* cmp = req->add_compare();
        cmp->set_key(key);
        cmp->set_result(pb::Compare::EQUAL);
        const int64_t expected = rev[i].load();
        if (expected == 0) {
          cmp->set_target(pb::Compare::CREATE);
          cmp->set_create_revision(0);
        } else {
          cmp->set_target(pb::Compare::MOD);
          cmp->set_mod_revision(expected);
        }
        pb::PutRequest* put = req->add_success()->mutable_request_put();
        put->set_key(key);
        put->set_value(value);
        req->add_failure()->mutable_request_range()->set_key(key);
      });
  *result = loop.Run(warmup, duration, drain);
  return true;
}

}  // namespace lrsched_bench
