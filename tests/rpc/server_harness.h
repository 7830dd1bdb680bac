// Copyright lrsched authors.
//
// ServerHarness: an in-process lrsched server on 127.0.0.1:<any port> over a real gRPC channel,
// backed by a MemoryStore (with failure injection) or a SqliteStore in a fresh temporary
// directory, for the server tests. Restart() stops the server (closing the store, as a
// graceful shutdown does) and starts a new one on the same data.
//
// Also small helpers for calling RPCs with a deadline, and test specs.
#ifndef LRSCHED_TESTS_SERVER_HARNESS_H_
#define LRSCHED_TESTS_SERVER_HARNESS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "lrsched/v1/lrsched.grpc.pb.h"
#include "server/rpc/server.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/testing/memory_store.h"

namespace lrsched::test_support {

enum class StoreKind { kMemory, kSqlite };
std::string StoreKindName(const ::testing::TestParamInfo<StoreKind>& info);

class ServerHarness {
 public:
  explicit ServerHarness(StoreKind kind, ServerConfig config = {});
  ~ServerHarness();

  void Start();
  void Stop(absl::Duration grace = absl::Seconds(5));
  void Restart();

  v1::LrScheduler::Stub& stub() { return *stub_; }
  // A stub on a channel of its own (a separate client connection).
  std::unique_ptr<v1::LrScheduler::Stub> NewStub() const;
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  const std::string& address() const { return server_->address(); }
  MemoryStore* memory() { return memory_.get(); }  // null with SQLite
  Store* store();
  StoreKind kind() const { return kind_; }
  LrschedServer* server() { return server_.get(); }  // null while stopped

 private:
  StoreKind kind_;
  ServerConfig config_;
  std::string dir_;
  std::unique_ptr<MemoryStore> memory_;
  std::unique_ptr<SqliteStore> sqlite_;
  std::unique_ptr<LrschedServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LrScheduler::Stub> stub_;
};

// Polls `done` every 2 ms for up to `timeout`; true as soon as it holds.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10));

// A context with a deadline (10 s unless given).
std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10));

// One-line RPC helpers; the Status is returned, the reply written to *out when given.
grpc::Status Create(v1::LrScheduler::Stub& stub, const std::string& name,
                    const std::string& spec_json, v1::Session* out = nullptr,
                    const std::map<std::string, std::string>& labels = {});
grpc::Status Get(v1::LrScheduler::Stub& stub, const std::string& name, v1::Session* out = nullptr);
grpc::Status Delete(v1::LrScheduler::Stub& stub, const std::string& name,
                    std::optional<int64_t> if_revision = std::nullopt);
grpc::Status StepOnce(v1::LrScheduler::Stub& stub, const v1::StepRequest& req,
                      v1::StepResponse* out = nullptr);
grpc::Status Step(v1::LrScheduler::Stub& stub, const std::string& name,
                  v1::StepResponse* out = nullptr);
grpc::Status Export(v1::LrScheduler::Stub& stub, const std::string& name,
                    v1::ExportStateResponse* out);
// grpc.health.v1.Health/Check of the whole server, through a generic stub.
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel);

// The access-log lines (server/ops/access_log.h) written while `calls` runs, in order, each
// without its timestamp, level and latency (which vary): "event=access method=... code=...".
// Logs at info level meanwhile (the harness keeps tests quiet), then back to warnings only.
std::vector<std::string> CaptureAccessLog(const std::function<void()>& calls);

// Specs used across the tests.
extern const char* const kCosineSpec;    // SGD, 2 groups (momentum), CosineAnnealingLR
extern const char* const kPlateauSpec;   // Adam, ReduceLROnPlateau (not deterministic)
extern const char* const kOneCycleSpec;  // SGD, OneCycleLR with total_steps 5
extern const char* const kStepLRSpec;    // Adagrad (no momentum), StepLR
extern const char* const kLambdaSpec;    // SGD, LambdaLR with an expression

}  // namespace lrsched::test_support

#endif  // LRSCHED_TESTS_SERVER_HARNESS_H_
