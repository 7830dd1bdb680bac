// Copyright lrsched authors.
#include "tests/rpc/server_harness.h"

#include <stdlib.h>

#include <filesystem>
#include <future>
#include <mutex>
#include <string_view>

#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "server/ops/log.h"

namespace lrsched::test_support {

const char* const kCosineSpec =
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}, )"
    R"({"lr": 0.2}]}, "scheduler": {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 0.001}})";
const char* const kPlateauSpec =
    R"({"optimizer": {"type": "Adam", "param_groups": [{"lr": 0.1}]}, )"
    R"("scheduler": {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}})";
const char* const kOneCycleSpec =
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]}, )"
    R"("scheduler": {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 5}})";
const char* const kStepLRSpec =
    R"({"optimizer": {"type": "Adagrad", "param_groups": [{"lr": 0.1}]}, )"
    R"("scheduler": {"type": "StepLR", "step_size": 3, "gamma": 0.5}})";
const char* const kLambdaSpec =
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]}, )"
    R"("scheduler": {"type": "LambdaLR", "lr_lambda": "0.95 ** epoch if epoch > 2 else 1.0"}})";

std::string StoreKindName(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::kMemory ? "Memory" : "Sqlite";
}

ServerHarness::ServerHarness(StoreKind kind, ServerConfig config)
    : kind_(kind), config_(std::move(config)) {
  // Keep test output readable: the server's info lines (one per created session) are noise here.
  logging::SetMinLevel(logging::Level::kWarning);
  config_.listen = "127.0.0.1:0";
  if (kind_ == StoreKind::kMemory) {
    memory_ = std::make_unique<MemoryStore>();
  } else {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/lrsched_server_test.XXXXXX";
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    dir_ = tmpl;
  }
  Start();
}

ServerHarness::~ServerHarness() {
  Stop(absl::Seconds(1));
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

Store* ServerHarness::store() {
  if (memory_) return memory_.get();
  return sqlite_.get();
}

void ServerHarness::Start() {
  if (memory_) {
    memory_->Reopen();
  } else {
    SqliteStore::Options o;
    o.dir = dir_;
    // Tests need no power-loss durability; process-crash durability is the same either way.
    o.synchronous = SqliteStore::Options::Synchronous::kNormal;
    auto s = SqliteStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    sqlite_ = *std::move(s);
  }
  auto server = LrschedServer::Start(config_, store());
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  channel_ =
      grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args);
  stub_ = v1::LrScheduler::NewStub(channel_);
}

void ServerHarness::Stop(absl::Duration grace) {
  if (server_ == nullptr) return;
  server_->Shutdown(grace);
  server_.reset();
  stub_.reset();
  channel_.reset();
  sqlite_.reset();
}

void ServerHarness::Restart() {
  Stop();
  Start();
}

std::unique_ptr<v1::LrScheduler::Stub> ServerHarness::NewStub() const {
  grpc::ChannelArguments args;
  // A distinct channel argument keeps gRPC from sharing one connection between the channels.
  args.SetInt("lrsched.test.channel_id", static_cast<int>(reinterpret_cast<uintptr_t>(&args)));
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::LrScheduler::NewStub(
      grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args));
}

bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

grpc::Status Create(v1::LrScheduler::Stub& stub, const std::string& name,
                    const std::string& spec_json, v1::Session* out,
                    const std::map<std::string, std::string>& labels) {
  v1::CreateSessionRequest req;
  req.set_name(name);
  req.set_spec_json(spec_json);
  for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
  v1::Session resp;
  grpc::Status s = stub.CreateSession(Ctx().get(), req, &resp);
  if (out != nullptr) *out = resp;
  return s;
}

grpc::Status Get(v1::LrScheduler::Stub& stub, const std::string& name, v1::Session* out) {
  v1::GetSessionRequest req;
  req.set_name(name);
  v1::Session resp;
  grpc::Status s = stub.GetSession(Ctx().get(), req, &resp);
  if (out != nullptr) *out = resp;
  return s;
}

grpc::Status Delete(v1::LrScheduler::Stub& stub, const std::string& name,
                    std::optional<int64_t> if_revision) {
  v1::DeleteSessionRequest req;
  req.set_name(name);
  if (if_revision) req.set_if_revision(*if_revision);
  v1::DeleteSessionResponse resp;
  return stub.DeleteSession(Ctx().get(), req, &resp);
}

grpc::Status StepOnce(v1::LrScheduler::Stub& stub, const v1::StepRequest& req,
                      v1::StepResponse* out) {
  v1::StepResponse resp;
  grpc::Status s = stub.Step(Ctx().get(), req, &resp);
  if (out != nullptr) *out = resp;
  return s;
}

grpc::Status Step(v1::LrScheduler::Stub& stub, const std::string& name, v1::StepResponse* out) {
  v1::StepRequest req;
  req.set_name(name);
  return StepOnce(stub, req, out);
}

grpc::Status Export(v1::LrScheduler::Stub& stub, const std::string& name,
                    v1::ExportStateResponse* out) {
  v1::ExportStateRequest req;
  req.set_name(name);
  return stub.ExportState(Ctx().get(), req, out);
}

grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::Slice empty("");  // an empty HealthCheckRequest is zero bytes
  grpc::ByteBuffer req(&empty, 1), resp;
  std::promise<grpc::Status> done;
  auto ctx = Ctx();
  stub.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                 [&done](grpc::Status s) { done.set_value(s); });
  return done.get_future().get();
}

std::vector<std::string> CaptureAccessLog(const std::function<void()>& calls) {
  std::mutex mu;
  std::vector<std::string> lines;
  logging::SetSinkForTest([&](const std::string& line) {
    constexpr std::string_view kEvent = " event=access ";
    const size_t from = line.find(kEvent);
    if (from == std::string::npos) return;
    std::lock_guard<std::mutex> l(mu);
    lines.push_back(line.substr(from + 1, line.rfind(" ms=") - from - 1));
  });
  logging::SetMinLevel(logging::Level::kInfo);
  calls();
  logging::SetSinkForTest(nullptr);
  logging::SetMinLevel(logging::Level::kWarning);
  return lines;
}

}  // namespace lrsched::test_support
