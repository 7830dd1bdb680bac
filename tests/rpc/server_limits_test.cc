// Copyright lrsched authors.
//
// Bounded work per call: Simulate and GetLR are refused RESOURCE_EXHAUSTED, before any work,
// when steps x the schedule's step cost exceeds --max_call_cost or the reply would exceed
// --max_reply_bytes, with a message naming the field and the numbers; ordinary calls stay
// allowed under the defaults; heavy calls (a costly step among them) run on a pool of their
// own, so a full heavy pool refuses heavy calls promptly and never delays Create, Step, Delete
// or a short GetLR.
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

// A ChainedScheduler of 60 MultiplicativeLR with ~1000-character lambdas: 150-400 us a step.
std::string CostlySpec(int groups = 1) {
  std::string lambda = "0.99999+0*(epoch";
  while (lambda.size() < 990) lambda += "+epoch%7";
  lambda += ")";
  json subs = json::array();
  for (int i = 0; i < 60; ++i) {
    subs.push_back({{"type", "MultiplicativeLR"}, {"lr_lambda", lambda}});
  }
  json g = json::array();
  for (int i = 0; i < groups; ++i) g.push_back({{"lr", 0.1}, {"momentum", 0.9}});
  return json{{"optimizer", {{"type", "SGD"}, {"param_groups", g}}},
              {"scheduler", {{"type", "ChainedScheduler"}, {"schedulers", subs}}}}
      .dump();
}

// CosineAnnealingLR with `groups` groups, momentum (16 bytes a value in a trace).
std::string CosineSpec(int groups) {
  json g = json::array();
  for (int i = 0; i < groups; ++i) g.push_back({{"lr", 0.1}, {"momentum", 0.9}});
  return json{{"optimizer", {{"type", "SGD"}, {"param_groups", g}}},
              {"scheduler", {{"type", "CosineAnnealingLR"}, {"T_max", 100}}}}
      .dump();
}

grpc::Status Simulate(v1::LrScheduler::Stub& stub, const std::string& spec, int64_t steps,
                      v1::SimulateResponse* out, absl::Duration timeout = absl::Seconds(30)) {
  v1::SimulateRequest req;
  req.set_spec_json(spec);
  req.set_steps(steps);
  return stub.Simulate(Ctx(timeout).get(), req, out);
}

grpc::Status GetLR(v1::LrScheduler::Stub& stub, const std::string& name, int64_t ahead,
                   int32_t window, v1::GetLRResponse* out,
                   absl::Duration timeout = absl::Seconds(30)) {
  v1::GetLRRequest req;
  req.set_name(name);
  req.set_ahead(ahead);
  req.set_window(window);
  return stub.GetLR(Ctx(timeout).get(), req, out);
}

void ExpectRefused(const grpc::Status& s, const std::string& field, const std::string& flag) {
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), AllOf(StartsWith(field + ": "), HasSubstr(flag)));
}

TEST(ServerLimitsTest, SimulateBoundedByCostNotSteps) {
  ServerHarness h(StoreKind::kMemory);
  v1::SimulateResponse r;
  // 1e6 steps of a plain schedule: allowed by default.
  ASSERT_TRUE(Simulate(h.stub(), CosineSpec(1), 1'000'000, &r).ok());
  EXPECT_EQ(r.lr_size(), 1'000'000);
  // 1e6 steps of the costly spec (~140 s of work): refused before any, naming the numbers.
  absl::Time t0 = absl::Now();
  grpc::Status s = Simulate(h.stub(), CostlySpec(), 1'000'000, &r);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  ExpectRefused(s, "steps", "--max_call_cost");
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("1000000 steps x "), HasSubstr("1000000000")));
  // A few steps of it are fine.
  ASSERT_TRUE(Simulate(h.stub(), CostlySpec(), 100, &r).ok());
  EXPECT_EQ(r.lr_size(), 100);
}

TEST(ServerLimitsTest, SimulateReplyBounded) {
  ServerConfig config;
  config.max_reply_bytes = 1 << 20;
  ServerHarness h(StoreKind::kMemory, config);
  v1::SimulateResponse r;
  // 1000 steps x 100 groups x 16 bytes (lr and momentum) = 1.6 MB > 1 MiB.
  grpc::Status s = Simulate(h.stub(), CosineSpec(100), 1000, &r);
  ExpectRefused(s, "steps", "--max_reply_bytes");
  EXPECT_THAT(s.error_message(), HasSubstr("1000 steps x 100 param groups x 16 bytes"));
  ASSERT_TRUE(Simulate(h.stub(), CosineSpec(100), 600, &r).ok());
  EXPECT_EQ(r.lr_size(), 60000);
}

TEST(ServerLimitsTest, LookaheadBoundedByCost) {
  ServerHarness h(StoreKind::kMemory);
  ASSERT_TRUE(Create(h.stub(), "plain", CosineSpec(4)).ok());
  ASSERT_TRUE(Create(h.stub(), "costly", CostlySpec()).ok());
  v1::GetLRResponse r;
  // The largest lookahead of a plain schedule is allowed.
  ASSERT_TRUE(GetLR(h.stub(), "plain", 1'000'000, 0, &r).ok());
  ASSERT_TRUE(GetLR(h.stub(), "plain", 0, 10'000, &r).ok());
  EXPECT_EQ(r.window_size(), 10'000);
  // The same of the costly one is refused at once, naming the field.
  absl::Time t0 = absl::Now();
  grpc::Status s = GetLR(h.stub(), "costly", 1'000'000, 0, &r);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  ExpectRefused(s, "ahead", "--max_call_cost");
  EXPECT_THAT(s.error_message(), HasSubstr("1000000 steps x "));
  ExpectRefused(GetLR(h.stub(), "costly", 10, 10'000, &r), "window", "--max_call_cost");
  // Short ones stay allowed, and the session is untouched.
  ASSERT_TRUE(GetLR(h.stub(), "costly", 10, 5, &r).ok());
  EXPECT_EQ(r.window_size(), 5);
  v1::Session got;
  ASSERT_TRUE(Get(h.stub(), "costly", &got).ok());
  EXPECT_EQ(got.last_epoch(), 0);
}

TEST(ServerLimitsTest, LookaheadWindowReplyBounded) {
  ServerConfig config;
  config.max_reply_bytes = 1 << 20;
  ServerHarness h(StoreKind::kMemory, config);
  ASSERT_TRUE(Create(h.stub(), "wide", CosineSpec(100)).ok());
  v1::GetLRResponse r;
  // 1000 epochs x 100 groups x 96 bytes > 1 MiB.
  grpc::Status s = GetLR(h.stub(), "wide", 0, 1000, &r);
  ExpectRefused(s, "window", "--max_reply_bytes");
  EXPECT_THAT(s.error_message(), HasSubstr("1000 epochs x 100 param groups"));
  ASSERT_TRUE(GetLR(h.stub(), "wide", 0, 100, &r).ok());
  EXPECT_EQ(r.window_size(), 100);
}

TEST(ServerLimitsTest, HeavyCallsHaveTheirOwnPoolAndQueue) {
  ServerConfig config;
  config.worker_threads = 2;
  config.heavy_threads = 1;
  config.max_heavy_queued = 2;
  config.max_call_cost = int64_t{1} << 62;  // long calls, ended by their deadline
  ServerHarness h(StoreKind::kMemory, config);
  ASSERT_TRUE(Create(h.stub(), "costly", CostlySpec()).ok());

  // Three heavy calls of minutes each: one runs, two wait; their deadlines end them.
  std::vector<std::thread> heavy;
  std::vector<grpc::Status> results(3);
  for (int i = 0; i < 3; ++i) {
    heavy.emplace_back([&, i] {
      v1::SimulateResponse r;
      results[i] = Simulate(*h.NewStub(), CostlySpec(), 1'000'000, &r, absl::Seconds(8));
    });
    ASSERT_TRUE(Eventually([&] {
      return h.server()->heavy_busy() == 1 && h.server()->heavy_queued() == static_cast<size_t>(i);
    }));
  }
  // A fourth is refused at once: the heavy queue is full.
  v1::GetLRResponse lr;
  grpc::Status refused = GetLR(h.stub(), "costly", 100'000, 0, &lr);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("heavy calls"));
  v1::ImportStateRequest import;
  import.set_name("imported");
  import.set_state_json(R"({"format": "lrsched.schedule"})");
  v1::Session imported;
  EXPECT_EQ(h.stub().ImportState(Ctx().get(), import, &imported).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Meanwhile every other call is served by the other pool, or inline.
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(Create(h.stub(), "light", kCosineSpec).ok());
  ASSERT_TRUE(Step(h.stub(), "light").ok());
  ASSERT_TRUE(Step(h.stub(), "costly").ok());
  ASSERT_TRUE(GetLR(h.stub(), "light", 100, 10, &lr).ok());
  ASSERT_TRUE(GetLR(h.stub(), "costly", 2, 0, &lr).ok());
  ASSERT_TRUE(Delete(h.stub(), "light").ok());
  EXPECT_LT(absl::Now() - t0, absl::Seconds(4));
  EXPECT_EQ(h.server()->heavy_busy(), 1);

  for (std::thread& t : heavy) t.join();
  for (const grpc::Status& s : results) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  }
  // The queued ones were dropped unrun once their deadline passed; the pool is free again.
  ASSERT_TRUE(Eventually([&] { return h.server()->heavy_busy() == 0; }));
  v1::SimulateResponse r;
  EXPECT_TRUE(Simulate(h.stub(), CostlySpec(), 10, &r).ok());
}

// A step that alone is real work (here 60 long lambdas over 64 groups, ~20-40 ms) is a heavy
// call too: refused while the heavy pool is full, when an ordinary step is not.
TEST(ServerLimitsTest, CostlyStepIsAHeavyCall) {
  ServerConfig config;
  config.heavy_threads = 1;
  config.max_heavy_queued = 1;
  config.max_call_cost = int64_t{1} << 62;
  ServerHarness h(StoreKind::kMemory, config);
  ASSERT_TRUE(Create(h.stub(), "wide", CostlySpec(64)).ok());
  ASSERT_TRUE(Create(h.stub(), "plain", kCosineSpec).ok());
  std::vector<std::thread> heavy;
  for (int i = 0; i < 2; ++i) {
    heavy.emplace_back([&] {
      v1::SimulateResponse r;
      EXPECT_FALSE(Simulate(*h.NewStub(), CostlySpec(), 1'000'000, &r, absl::Seconds(5)).ok());
    });
    ASSERT_TRUE(Eventually([&] {
      return h.server()->heavy_busy() == 1 && h.server()->heavy_queued() == static_cast<size_t>(i);
    }));
  }
  grpc::Status refused = Step(h.stub(), "wide");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("heavy calls"));
  EXPECT_TRUE(Step(h.stub(), "plain").ok());
  for (std::thread& t : heavy) t.join();
  ASSERT_TRUE(Eventually([&] { return h.server()->heavy_busy() == 0; }));
  v1::StepResponse r;
  ASSERT_TRUE(Step(h.stub(), "wide", &r).ok());
  EXPECT_TRUE(r.advanced());
  EXPECT_EQ(r.session().last_epoch(), 1);  // the refused step changed nothing
}

}  // namespace
}  // namespace lrsched::test_support
