// Copyright lrsched authors.
//
// loadgen: closed-loop load for lrsched's GetLR and Step, and for the bare echo service
// (bench/echo_server) that is their ceiling. `--concurrency` calls are kept outstanding over
// `--channels` channels (callback API, bench/closed_loop.h); after `--warmup_ms` the calls
// completing in the next `--duration_ms` are counted and their latencies sorted. Prints one
// line of key=value results.
//
//   loadgen --addr=127.0.0.1:PORT --rpc=getlr --concurrency=32                 # one session
//   loadgen --addr=127.0.0.1:PORT --rpc=step --concurrency=32 --sessions=1000  # round-robin
//   loadgen --addr=127.0.0.1:PORT --http_addr=127.0.0.1:HPORT --rpc=http_getlr --concurrency=32
//   loadgen --addr=127.0.0.1:PORT --rpc=echo --request_bytes=20 --response_bytes=40
//   loadgen --addr=ETCD --rpc=etcd_txn --concurrency=32 --sessions=1000 --prefix=/bare/
//           --value_like=/lrsched/bench/0          # bare etcd (one command), bench/etcd_load.h
//
// GetLR and Step create their sessions first (CreateSession is idempotent; --create=0 skips it
// when an earlier run made them, e.g. so that no set-up call reaches the store): names
// `<prefix>/<i>`, SGD + CosineAnnealingLR (T_max 1e9, so Step never runs out). GetLR asks for
// ahead = 0, window = 0 of session 0. Step uses no if_epoch; slot i steps sessions i, i + C,
// i + 2C, ... in turn (C = concurrency), so with sessions >= C no two calls wait on one session.
// http_getlr is GetLR of the same session through the server's HTTP/JSON gateway at
// --http_addr (GET /v1/sessions/<prefix>/0:lr; bench/http_load.h: one keep-alive connection
// per client thread); its session is created over gRPC at --addr, as for getlr.
// etcd_txn and etcd_put (bench/etcd_load.h) load an etcd endpoint directly: a Txn shaped like
// lrsched's Step commit, or a plain Put, of --value_bytes (or the size of --value_like's value)
// on keys `<prefix><i>` walked as Step walks its sessions.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/closed_loop.h"
#include "bench/echo.grpc.pb.h"
#include "bench/etcd_load.h"
#include "bench/http_load.h"
#include "grpcpp/grpcpp.h"
#include "lrsched/v1/lrsched.grpc.pb.h"

namespace {

using lrsched_bench::ClosedLoop;
using lrsched_bench::RunResult;
namespace v1 = lrsched::v1;
namespace eb = lrsched::bench;

struct Flags {
  std::string addr = "127.0.0.1:50051";
  std::string http_addr;  // http_getlr: the server's --http_listen address
  std::string rpc = "getlr";
  int concurrency = 1;
  int channels = 1;
  int sessions = 0;  // 0: getlr 1, step = concurrency
  std::string prefix = "bench";
  int warmup_ms = 1000;
  int duration_ms = 5000;
  int request_bytes = 0;
  int response_bytes = 0;
  int value_bytes = 256;   // etcd_*: the value's size, unless value_like is given
  std::string value_like;  // etcd_*: use the size of this key's value
  std::string label;
  bool create = true;  // getlr/step: CreateSession every session first
};

bool Parse(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fprintf(stderr, "loadgen: bad argument %s\n", a.c_str());
      return false;
    }
    std::string k = a.substr(2, eq - 2), v = a.substr(eq + 1);
    if (k == "addr")
      f->addr = v;
    else if (k == "http_addr")
      f->http_addr = v;
    else if (k == "rpc")
      f->rpc = v;
    else if (k == "concurrency")
      f->concurrency = std::atoi(v.c_str());
    else if (k == "channels")
      f->channels = std::atoi(v.c_str());
    else if (k == "sessions")
      f->sessions = std::atoi(v.c_str());
    else if (k == "prefix")
      f->prefix = v;
    else if (k == "warmup_ms")
      f->warmup_ms = std::atoi(v.c_str());
    else if (k == "duration_ms")
      f->duration_ms = std::atoi(v.c_str());
    else if (k == "request_bytes")
      f->request_bytes = std::atoi(v.c_str());
    else if (k == "response_bytes")
      f->response_bytes = std::atoi(v.c_str());
    else if (k == "value_bytes")
      f->value_bytes = std::atoi(v.c_str());
    else if (k == "value_like")
      f->value_like = v;
    else if (k == "label")
      f->label = v;
    else if (k == "create")
      f->create = v != "0";
    else {
      std::fprintf(stderr, "loadgen: unknown flag --%s\n", k.c_str());
      return false;
    }
  }
  if (f->concurrency < 1 || f->concurrency > 4096 || f->channels < 1 || f->channels > 64 ||
      f->duration_ms < 100 || f->duration_ms > 600000 || f->warmup_ms < 0 || f->value_bytes < 0 ||
      f->value_bytes > (1 << 20) ||
      (f->rpc != "getlr" && f->rpc != "step" && f->rpc != "echo" && f->rpc != "etcd_txn" &&
       f->rpc != "etcd_put" && f->rpc != "http_getlr") ||
      (f->rpc == "http_getlr" && f->http_addr.empty())) {
    std::fprintf(stderr, "loadgen: flags out of range\n");
    return false;
  }
  const bool per_slot = f->rpc == "step" || f->rpc.rfind("etcd_", 0) == 0;
  if (f->sessions <= 0) f->sessions = per_slot ? f->concurrency : 1;
  return true;
}

std::vector<std::shared_ptr<grpc::Channel>> Channels(const Flags& f) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < f.channels; ++i) {
    grpc::ChannelArguments args;
    // Distinct channels get distinct TCP connections (no shared subchannel).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("lrsched.bench.channel", i);
    out.push_back(grpc::CreateCustomChannel(f.addr, grpc::InsecureChannelCredentials(), args));
  }
  for (auto& ch : out) {
    if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::fprintf(stderr, "loadgen: cannot connect to %s\n", f.addr.c_str());
      std::exit(1);
    }
  }
  return out;
}

std::string SessionName(const Flags& f, int i) { return f.prefix + "/" + std::to_string(i); }

// Creates sessions 0..n-1 (idempotent), with a few threads so that commits group.
bool CreateSessions(const Flags& f, const std::shared_ptr<grpc::Channel>& ch, int n) {
  auto stub = v1::LrScheduler::NewStub(ch);
  const std::string spec =
      R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},)"
      R"( "scheduler": {"type": "CosineAnnealingLR", "T_max": 1000000000, "eta_min": 0.001}})";
  std::atomic<int> next{0};
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < n && ok; i = next++) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        v1::CreateSessionRequest req;
        req.set_name(SessionName(f, i));
        req.set_spec_json(spec);
        v1::Session resp;
        grpc::Status st = stub->CreateSession(&ctx, req, &resp);
        if (!st.ok()) {
          std::fprintf(stderr, "loadgen: create %s: %s\n", req.name().c_str(),
                       st.error_message().c_str());
          ok = false;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!Parse(argc, argv, &f)) return 2;
  auto channels = Channels(f);
  const auto warmup = std::chrono::milliseconds(f.warmup_ms);
  const auto duration = std::chrono::milliseconds(f.duration_ms);
  const auto drain = std::chrono::milliseconds(12000);
  RunResult r;
  int value_bytes = 0;
  if (f.rpc.rfind("etcd_", 0) == 0) {
    lrsched_bench::EtcdLoadOptions o;
    o.rpc = f.rpc;
    o.concurrency = f.concurrency;
    o.sessions = f.sessions;
    o.prefix = f.prefix;
    o.value_bytes = f.value_bytes;
    o.value_like = f.value_like;
    if (!lrsched_bench::RunEtcdLoad(o, channels, warmup, duration, drain, &r, &value_bytes)) {
      return 1;
    }
  } else if (f.rpc == "echo") {
    std::vector<std::unique_ptr<eb::Echo::Stub>> stubs;
    for (auto& ch : channels) stubs.push_back(eb::Echo::NewStub(ch));
    // Sized so that the serialized request and response are request_bytes and response_bytes
    // (a bytes field costs a tag byte and a length varint besides its contents).
    auto content = [](int total, int other) {
      int n = total - other - 2;
      if (n >= 128) --n;
      return std::max(0, n);
    };
    eb::EchoRequest probe;
    probe.set_response_bytes(content(f.response_bytes, 0));
    const std::string payload(
        static_cast<size_t>(content(f.request_bytes, static_cast<int>(probe.ByteSizeLong()))), 'q');
    ClosedLoop<eb::EchoRequest, eb::EchoResponse> loop(
        f.concurrency,
        [&](int slot, grpc::ClientContext* ctx, const eb::EchoRequest* req, eb::EchoResponse* resp,
            std::function<void(grpc::Status)> done) {
          stubs[slot % stubs.size()]->async()->Echo(ctx, req, resp, std::move(done));
        },
        [&](int, int64_t seq, eb::EchoRequest* req) {
          if (seq == 0) {
            req->set_payload(payload);
            req->set_response_bytes(content(f.response_bytes, 0));
          }
        });
    r = loop.Run(warmup, duration, drain);
  } else {
    const int n = f.sessions;
    if (f.create && !CreateSessions(f, channels[0], n)) return 1;
    std::vector<std::unique_ptr<v1::LrScheduler::Stub>> stubs;
    for (auto& ch : channels) stubs.push_back(v1::LrScheduler::NewStub(ch));
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) names.push_back(SessionName(f, i));
    if (f.rpc == "http_getlr") {
      lrsched_bench::HttpLoadOptions o;
      o.addr = f.http_addr;
      o.path = "/v1/sessions/" + names[0] + ":lr";  // bench names need no percent-encoding
      o.concurrency = f.concurrency;
      if (!lrsched_bench::RunHttpLoad(o, warmup, duration, &r)) return 1;
    } else if (f.rpc == "getlr") {
      ClosedLoop<v1::GetLRRequest, v1::GetLRResponse> loop(
          f.concurrency,
          [&](int slot, grpc::ClientContext* ctx, const v1::GetLRRequest* req,
              v1::GetLRResponse* resp, std::function<void(grpc::Status)> done) {
            stubs[slot % stubs.size()]->async()->GetLR(ctx, req, resp, std::move(done));
          },
          [&](int, int64_t seq, v1::GetLRRequest* req) {
            if (seq == 0) req->set_name(names[0]);
          });
      r = loop.Run(warmup, duration, drain);
    } else {
      const int c = f.concurrency;
      ClosedLoop<v1::StepRequest, v1::StepResponse> loop(
          c,
          [&](int slot, grpc::ClientContext* ctx, const v1::StepRequest* req,
              v1::StepResponse* resp, std::function<void(grpc::Status)> done) {
            stubs[slot % stubs.size()]->async()->Step(ctx, req, resp, std::move(done));
          },
          [&](int slot, int64_t seq, v1::StepRequest* req) {
            // Slot's own sessions: slot, slot + c, slot + 2c, ... < n (at least `slot % n`).
            const int64_t per_slot = std::max<int64_t>(1, (n - slot + c - 1) / c);
            const int64_t i = (slot + (seq % per_slot) * c) % n;
            req->set_name(names[static_cast<size_t>(i)]);
          });
      r = loop.Run(warmup, duration, drain);
    }
  }
  std::printf(
      "rpc=%s label=%s concurrency=%d channels=%d sessions=%d calls=%lld errors=%lld "
      "seconds=%.2f qps=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f "
      "max_at_s=%.3f request_bytes=%zu response_bytes=%zu value_bytes=%d\n",
      f.rpc.c_str(), f.label.empty() ? "-" : f.label.c_str(), f.concurrency, f.channels,
      f.rpc == "echo" ? 0 : f.sessions, static_cast<long long>(r.ok),
      static_cast<long long>(r.errors), r.seconds, r.qps(), r.percentile_us(0.50),
      r.percentile_us(0.90), r.percentile_us(0.99),
      r.latency_ns.empty() ? 0.0 : r.latency_ns.back() / 1000.0, r.max_at_s, r.request_bytes,
      r.response_bytes, value_bytes);
  if (!r.first_error.empty())
    std::fprintf(stderr, "loadgen: first error %s\n", r.first_error.c_str());
  return r.ok > 0 ? 0 : 1;
}
