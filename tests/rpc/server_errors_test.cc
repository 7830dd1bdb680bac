// Copyright lrsched authors.
//
// Hostile and broken input, server limits and storage failures: each bad request gets the
// right code and a message naming the field, and a good request right after it still works.
#include <cmath>
#include <future>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

class ServerErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig config;
    config.max_sessions = 50;
    config.max_simulate_steps = 100000;
    h_ = std::make_unique<ServerHarness>(StoreKind::kMemory, config);
    ASSERT_TRUE(Create(stub(), "good", kCosineSpec).ok());
  }
  v1::LrScheduler::Stub& stub() { return h_->stub(); }

  // The server still answers, and correctly.
  void ExpectStillServing() {
    v1::StepResponse r;
    ASSERT_TRUE(Step(stub(), "good", &r).ok());
    EXPECT_TRUE(r.advanced());
  }
  void ExpectInvalid(const grpc::Status& s, const std::string& field) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), StartsWith(field + ":"));
    ExpectStillServing();
  }

  std::unique_ptr<ServerHarness> h_;
};

TEST_F(ServerErrorsTest, BadNames) {
  for (const std::string& name :
       {std::string(""), std::string(129, 'a'), std::string("a..b"), std::string("a b"),
        std::string("caf\xc3\xa9"), std::string("x\0y", 3), std::string("a;rm"),
        std::string("../etc/passwd")}) {
    SCOPED_TRACE(name);
    ExpectInvalid(Create(stub(), name, kCosineSpec), "name");
    ExpectInvalid(Get(stub(), name), "name");
    ExpectInvalid(Step(stub(), name), "name");
    ExpectInvalid(Delete(stub(), name), "name");
  }
  EXPECT_TRUE(Create(stub(), std::string(128, 'a'), kCosineSpec).ok());
}

TEST_F(ServerErrorsTest, BadLabels) {
  std::map<std::string, std::string> many;
  for (int i = 0; i < 17; ++i) many[absl::StrCat("k", i)] = "v";
  ExpectInvalid(Create(stub(), "l", kCosineSpec, nullptr, many), "labels");
  ExpectInvalid(Create(stub(), "l", kCosineSpec, nullptr, {{"bad key", "v"}}), "labels key");
  ExpectInvalid(Create(stub(), "l", kCosineSpec, nullptr, {{std::string(64, 'k'), "v"}}),
                "labels key");
  ExpectInvalid(Create(stub(), "l", kCosineSpec, nullptr, {{"k", std::string(257, 'v')}}),
                "labels[\"k\"]");
  EXPECT_TRUE(Create(stub(), "l", kCosineSpec, nullptr, {{"k", std::string(256, 'v')}}).ok());
}

TEST_F(ServerErrorsTest, BadSpecs) {
  ExpectInvalid(Create(stub(), "s", ""), "spec_json");
  ExpectInvalid(Create(stub(), "s", "{not json"), "spec_json");
  ExpectInvalid(Create(stub(), "s", "[1, 2]"), "spec_json");
  ExpectInvalid(Create(stub(), "s", std::string(100, '[') + std::string(100, ']')), "spec_json");
  std::string big = R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]}, "x": ")" +
                    std::string(70 * 1024, 'x') + "\"}";
  ExpectInvalid(Create(stub(), "s", big), "spec_json");
  grpc::Status s =
      Create(stub(), "s", R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
      "scheduler": {"type": "NoSuchLR"}})");
  ExpectInvalid(s, "spec_json");
  EXPECT_THAT(s.error_message(), HasSubstr("scheduler.type"));
  s = Create(stub(), "s", R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
      "scheduler": {"type": "CosineAnnealingLR", "T_max": -3}})");
  ExpectInvalid(s, "spec_json");
  EXPECT_THAT(s.error_message(), HasSubstr("spec_json: scheduler.T_max"));
  for (const char* lambda : {"epoch +", "__import__('os').system('true')", "(((((", "1e999999",
                             "epoch ** epoch ** epoch ** epoch", "lambda epoch: 1"}) {
    SCOPED_TRACE(lambda);
    json spec = json::parse(kLambdaSpec);
    spec["scheduler"]["lr_lambda"] = lambda;
    grpc::Status st = Create(stub(), "lam", spec.dump());
    if (st.ok()) {  // some are valid Python that fails only when stepped far enough
      ASSERT_TRUE(Delete(stub(), "lam").ok());
      continue;
    }
    ExpectInvalid(st, "spec_json");
  }
  std::vector<json> groups(2000, json{{"lr", 0.1}});
  json many = json::parse(kCosineSpec);
  many["optimizer"]["param_groups"] = groups;
  ExpectInvalid(Create(stub(), "s", many.dump()), "spec_json");
  EXPECT_TRUE(Create(stub(), "s", kLambdaSpec).ok());
}

TEST_F(ServerErrorsTest, NonFiniteMetricsAndEpochs) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {nan, inf, -inf}) {
    v1::StepRequest req;
    req.set_name("good");
    req.set_metric(bad);
    ExpectInvalid(StepOnce(stub(), req), "metric");
    req.clear_metric();
    req.set_epoch(bad);
    ExpectInvalid(StepOnce(stub(), req), "epoch");
    v1::SimulateRequest sim;
    sim.set_spec_json(kPlateauSpec);
    sim.set_steps(2);
    sim.add_metrics(1.0);
    sim.add_metrics(bad);
    v1::SimulateResponse r;
    ExpectInvalid(stub().Simulate(Ctx().get(), sim, &r), "metrics[1]");
  }
  // Finite but absurd epochs are the engine's business: refused as torch would.
  v1::StepRequest req;
  req.set_name("good");
  req.set_epoch(-5);
  EXPECT_EQ(StepOnce(stub(), req).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  req.set_epoch(1e300);
  EXPECT_EQ(StepOnce(stub(), req).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ExpectStillServing();
}

TEST_F(ServerErrorsTest, SizesAndLimits) {
  v1::SimulateRequest sim;
  sim.set_spec_json(kCosineSpec);
  v1::SimulateResponse r;
  sim.set_steps(1'000'000'000'000);
  EXPECT_EQ(stub().Simulate(Ctx().get(), sim, &r).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  ExpectStillServing();
  sim.set_steps(60000);  // 60000 steps x 2 groups > 100000 values
  EXPECT_EQ(stub().Simulate(Ctx().get(), sim, &r).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  sim.set_steps(-1);
  ExpectInvalid(stub().Simulate(Ctx().get(), sim, &r), "steps");
  sim.set_steps(10);
  sim.add_epochs(1);
  ExpectInvalid(stub().Simulate(Ctx().get(), sim, &r), "epochs");

  v1::GetLRRequest lr;
  lr.set_name("good");
  v1::GetLRResponse lr_resp;
  for (int64_t ahead : {int64_t{-1}, int64_t{1'000'001}, std::numeric_limits<int64_t>::max()}) {
    lr.set_ahead(ahead);
    ExpectInvalid(stub().GetLR(Ctx().get(), lr, &lr_resp), "ahead");
  }
  lr.set_ahead(0);
  for (int32_t window : {-1, 10001, std::numeric_limits<int32_t>::min()}) {
    lr.set_window(window);
    ExpectInvalid(stub().GetLR(Ctx().get(), lr, &lr_resp), "window");
  }
  lr.set_window(10000);
  lr.set_ahead(1'000'000);
  EXPECT_TRUE(stub().GetLR(Ctx().get(), lr, &lr_resp).ok());
  EXPECT_EQ(lr_resp.window_size(), 10000);

  v1::ListSessionsRequest list;
  v1::ListSessionsResponse list_resp;
  list.set_page_size(-1);
  ExpectInvalid(stub().ListSessions(Ctx().get(), list, &list_resp), "page_size");
  list.set_page_size(0);
  list.set_page_token("not a token!");
  ExpectInvalid(stub().ListSessions(Ctx().get(), list, &list_resp), "page_token");
  list.set_page_token("");
  list.set_name_prefix("bad prefix");
  ExpectInvalid(stub().ListSessions(Ctx().get(), list, &list_resp), "name_prefix");
}

TEST_F(ServerErrorsTest, MaxSessions) {
  for (int i = 1; i < 50; ++i) ASSERT_TRUE(Create(stub(), absl::StrCat("n", i), kStepLRSpec).ok());
  grpc::Status s = Create(stub(), "one-too-many", kStepLRSpec);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A retried create of an existing session is still answered.
  EXPECT_TRUE(Create(stub(), "n1", kStepLRSpec).ok());
  ASSERT_TRUE(Delete(stub(), "n1").ok());
  EXPECT_TRUE(Create(stub(), "one-too-many", kStepLRSpec).ok());
  ExpectStillServing();
}

TEST_F(ServerErrorsTest, OversizedMessageIsRefusedByGrpc) {
  std::string huge(5 << 20, ' ');  // over the 4 MiB receive limit
  grpc::Status s = Create(stub(), "huge", huge);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  ExpectStillServing();
}

TEST_F(ServerErrorsTest, BadImports) {
  v1::ImportStateRequest imp;
  imp.set_name("imp");
  v1::Session s;
  imp.set_state_json("{");
  ExpectInvalid(stub().ImportState(Ctx().get(), imp, &s), "state_json");
  imp.set_state_json(std::string(50, '{') + std::string(50, '}'));
  ExpectInvalid(stub().ImportState(Ctx().get(), imp, &s), "state_json");
  imp.set_state_json(R"({"format": "lrsched.schedule", "version": 99})");
  ExpectInvalid(stub().ImportState(Ctx().get(), imp, &s), "state_json");
  imp.set_state_json(R"({"labels": {"bad key": "v"}})");
  ExpectInvalid(stub().ImportState(Ctx().get(), imp, &s), "state_json.labels key");
  v1::ExportStateResponse ex;
  ASSERT_TRUE(Export(stub(), "good", &ex).ok());
  json state = json::parse(ex.state_json());
  state["state_dict"]["last_epoch"] = -7;
  imp.set_state_json(state.dump());
  ExpectInvalid(stub().ImportState(Ctx().get(), imp, &s), "state_json");
  imp.set_state_json(ex.state_json());
  EXPECT_TRUE(stub().ImportState(Ctx().get(), imp, &s).ok());
}

TEST_F(ServerErrorsTest, FailedCommitsRollBack) {
  v1::Session before;
  ASSERT_TRUE(Get(stub(), "good", &before).ok());
  h_->memory()->FailNextCommits(1, absl::UnavailableError("disk on fire"));
  grpc::Status s = Step(stub(), "good");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::Session after;
  ASSERT_TRUE(Get(stub(), "good", &after).ok());
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());

  h_->memory()->FailNextCommits(1, absl::InternalError("bad"));
  EXPECT_EQ(Create(stub(), "new", kCosineSpec).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(Get(stub(), "new").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Create(stub(), "new", kCosineSpec).ok());

  h_->memory()->FailNextCommits(1, absl::UnavailableError("disk on fire"));
  EXPECT_EQ(Delete(stub(), "new").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Get(stub(), "new").ok());

  v1::ExportStateResponse ex;
  ASSERT_TRUE(Export(stub(), "good", &ex).ok());
  v1::ImportStateRequest imp;
  imp.set_name("new");
  imp.set_state_json(ex.state_json());
  imp.set_replace(true);
  h_->memory()->FailNextCommits(1, absl::UnavailableError("disk on fire"));
  v1::Session imported;
  EXPECT_EQ(stub().ImportState(Ctx().get(), imp, &imported).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  v1::Session unchanged;
  ASSERT_TRUE(Get(stub(), "new", &unchanged).ok());
  EXPECT_EQ(unchanged.revision(), 1);
  EXPECT_EQ(unchanged.scheduler_type(), "CosineAnnealingLR");
  ExpectStillServing();
  EXPECT_TRUE(Delete(stub(), "new").ok());
}

TEST_F(ServerErrorsTest, DeadlinesAreHonoured) {
  ServerConfig config;
  config.max_simulate_steps = 50'000'000;
  config.max_call_cost = int64_t{1} << 62;  // only the deadline ends this call
  config.max_reply_bytes = int64_t{1} << 30;
  ServerHarness big(StoreKind::kMemory, config);
  v1::SimulateRequest sim;
  sim.set_spec_json(kLambdaSpec);
  sim.set_steps(50'000'000);  // seconds of work; the deadline is far shorter
  v1::SimulateResponse r;
  absl::Time t0 = absl::Now();
  grpc::Status s = big.stub().Simulate(Ctx(absl::Milliseconds(200)).get(), sim, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  ASSERT_TRUE(Create(big.stub(), "after", kCosineSpec).ok());
  // The cancelled call stops soon, so shutting down does not wait for its 50M steps.
  t0 = absl::Now();
  big.Stop(absl::Seconds(30));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
  ExpectStillServing();
}

// grpc.health.v1.Health/Check with an empty request; SERVING is field 1 = 1: bytes 08 01.
TEST_F(ServerErrorsTest, HealthCheckServes) {
  grpc::GenericStub generic(h_->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request, response;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                    [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& sl : slices)
    bytes += std::string(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

}  // namespace
}  // namespace lrsched::test_support

namespace lrsched::test_support {
namespace {

// grpc.reflection.v1alpha.ServerReflection: list_services (field 7, empty string) names ours.
TEST(ServerReflectionTest, ListsTheService) {
  ServerHarness h(StoreKind::kMemory);
  grpc::GenericStub generic(h.channel());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = generic.PrepareCall(
      &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  auto next = [&](intptr_t want) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(next(1));
  grpc::Slice req(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&req, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(next(2));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(next(3));
  call->WritesDone(reinterpret_cast<void*>(4));
  next(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  next(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& sl : slices)
    bytes += std::string(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_NE(bytes.find("lrsched.v1.LrScheduler"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
}

}  // namespace
}  // namespace lrsched::test_support
