// Copyright lrsched authors.
//
// lrsched::Client and RemoteSchedule (client/) against an in-process server: every call,
// retries across a server restart on the same port, deadlines, bearer tokens, and
// RemoteSchedule reproducing a local Schedule with one GetLR per K steps.
#include "client/client.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/remote_schedule.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "server/ops/auth.h"
#include "tests/rpc/server_harness.h"

namespace lrsched {
namespace {

using test_support::kCosineSpec;
using test_support::kPlateauSpec;
using test_support::ServerHarness;
using test_support::StoreKind;

ClientOptions FastOptions() {
  ClientOptions o;
  o.timeout = absl::Seconds(10);
  o.initial_backoff = absl::Milliseconds(50);
  o.max_backoff = absl::Milliseconds(400);
  return o;
}

StepArgs IfEpoch(int64_t e) {
  StepArgs a;
  a.if_epoch = e;
  return a;
}
StepArgs Metric(double m) {
  StepArgs a;
  a.metric = m;
  return a;
}
RemoteSchedule::Options Window(int32_t k) {
  RemoteSchedule::Options o;
  o.window = k;
  return o;
}
RemoteSchedule::Options Follow(int32_t k) {
  RemoteSchedule::Options o = Window(k);
  o.follow = true;
  return o;
}

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : harness_(StoreKind::kMemory) {
    ClientOptions o = FastOptions();
    o.server = harness_.address();
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }
  ServerHarness harness_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, EveryCall) {
  Client& c = *client_;
  auto s = c.CreateSession("c/a", kCosineSpec, {{"team", "x"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->last_epoch(), 0);
  EXPECT_TRUE(c.CreateSession("c/a", kCosineSpec, {{"team", "x"}}).ok());  // idempotent
  ASSERT_TRUE(c.CreateSession("c/b", kPlateauSpec, {}).ok());
  EXPECT_EQ(c.CreateSession("c/a", kPlateauSpec, {}).status().code(),
            absl::StatusCode::kAlreadyExists);

  auto got = c.GetSession("c/a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->labels().at("team"), "x");
  EXPECT_EQ(c.GetSession("nope").status().code(), absl::StatusCode::kNotFound);

  v1::ListSessionsRequest page;
  page.set_page_size(1);
  auto first = c.ListSessions(page);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->sessions_size(), 1);
  EXPECT_FALSE(first->next_page_token().empty());
  auto all = c.ListAllSessions("c/");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name(), "c/a");

  auto st = c.Step("c/a", IfEpoch(0));
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->advanced());
  st = c.Step("c/a", IfEpoch(0));
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->advanced());
  EXPECT_EQ(st->session().last_epoch(), 1);
  EXPECT_EQ(c.Step("c/a", Metric(0.5)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(c.Step("c/b", Metric(0.5)).ok());

  auto lr = c.GetLR("c/a", 2, 4);
  ASSERT_TRUE(lr.ok());
  EXPECT_EQ(lr->last_epoch(), 1);
  ASSERT_EQ(lr->window_size(), 4);
  EXPECT_EQ(lr->window(2).epoch(), 3);
  EXPECT_EQ(lr->window(2).groups(0).lr(), lr->groups(0).lr());
  EXPECT_EQ(c.GetLR("c/b", 1).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::SimulateRequest sim;
  sim.set_spec_json(kCosineSpec);
  sim.set_steps(5);
  auto simulated = c.Simulate(sim);
  ASSERT_TRUE(simulated.ok());
  EXPECT_EQ(simulated->lr_size(), 10);
  EXPECT_EQ(simulated->lr(0), got->groups(0).lr());  // before the first step: the initial lr
  EXPECT_EQ(simulated->lr(2), lr->window(0).groups(0).lr());  // after one step: epoch 1

  auto ex = c.ExportState("c/a");
  ASSERT_TRUE(ex.ok());
  v1::ImportStateRequest imp;
  imp.set_name("c/copy");
  imp.set_state_json(ex->state_json());
  auto copy = c.ImportState(imp);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->last_epoch(), 1);
  EXPECT_EQ(copy->groups(0).lr(), ex->session().groups(0).lr());
  v1::ImportStateRequest torch;
  torch.set_name("c/torch");
  torch.mutable_torch()->set_spec_json(kCosineSpec);
  torch.mutable_torch()->set_state_dict_json(ex->torch_state_dict_json());
  EXPECT_TRUE(c.ImportState(torch).ok());
  EXPECT_EQ(c.ImportState(imp).status().code(), absl::StatusCode::kAlreadyExists);

  auto health = c.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);

  EXPECT_TRUE(c.DeleteSession("c/copy").ok());
  EXPECT_EQ(c.DeleteSession("c/copy").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c.DeleteSession("c/a", /*if_revision=*/99).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, WatchSeesEveryStepAndEndsWhenDeleted) {
  ASSERT_TRUE(client_->CreateSession("w", kCosineSpec, {}).ok());
  std::atomic<int> seen{0};
  std::vector<int64_t> epochs;
  absl::Status watch_status;
  std::thread watcher([&] {
    watch_status = client_->Watch("w", [&](const v1::Session& s) {
      epochs.push_back(s.last_epoch());
      ++seen;
      return true;
    });
  });
  auto wait_for = [&](int n) {
    for (int i = 0; i < 500 && seen.load() < n; ++i) absl::SleepFor(absl::Milliseconds(10));
  };
  wait_for(1);
  for (int64_t e = 0; e < 3; ++e) {
    ASSERT_TRUE(client_->Step("w", IfEpoch(e)).ok());
    wait_for(static_cast<int>(e) + 2);
  }
  ASSERT_TRUE(client_->DeleteSession("w").ok());
  watcher.join();
  EXPECT_EQ(watch_status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(epochs, (std::vector<int64_t>{0, 1, 2, 3}));

  // A callback returning false ends the watch OK.
  ASSERT_TRUE(client_->CreateSession("w2", kCosineSpec, {}).ok());
  EXPECT_TRUE(client_->Watch("w2", [](const v1::Session&) { return false; }).ok());
}

// A server restart on the same port and store: retry-safe calls ride it out; Delete does not
// retry (one attempt, UNAVAILABLE).
TEST(ClientRetryTest, RetriesAcrossARestart) {
  MemoryStore store;
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  auto server = LrschedServer::Start(config, &store);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ClientOptions o = FastOptions();
  o.server = absl::StrCat("127.0.0.1:", port);
  o.max_attempts = 12;  // 50 ms doubling to 400 ms: about 3.5 s in all
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok());
  Client& c = **client;
  ASSERT_TRUE(c.CreateSession("r", kCosineSpec, {}).ok());
  (*server)->Shutdown(absl::Seconds(1));
  server->reset();

  const int64_t deletes_before = c.rpc_count("DeleteSession");
  EXPECT_EQ(c.DeleteSession("r").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(c.rpc_count("DeleteSession") - deletes_before, 1);

  std::unique_ptr<LrschedServer> restarted;
  std::thread restart([&] {
    absl::SleepFor(absl::Milliseconds(700));
    store.Reopen();
    config.listen = absl::StrCat("127.0.0.1:", port);
    auto s = LrschedServer::Start(config, &store);
    ASSERT_TRUE(s.ok()) << s.status();
    restarted = *std::move(s);
  });
  const int64_t gets_before = c.rpc_count("GetSession");
  auto got = c.GetSession("r");
  restart.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name(), "r");
  EXPECT_GT(c.rpc_count("GetSession") - gets_before, 1);  // it did retry
  // A conditional step is retry-safe and goes through.
  EXPECT_TRUE(c.Step("r", IfEpoch(0)).ok());
  restarted->Shutdown(absl::Seconds(1));
}

// A gRPC server that accepts every call and never answers (a generic service nobody serves):
// the per-call deadline ends the call, and DEADLINE_EXCEEDED is not retried.
TEST(ClientDeadlineTest, DeadlineEndsAHungCall) {
  grpc::AsyncGenericService generic;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterAsyncGenericService(&generic);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> hung = builder.BuildAndStart();
  ASSERT_NE(hung, nullptr);
  ClientOptions o = FastOptions();
  o.server = absl::StrCat("127.0.0.1:", port);
  o.timeout = absl::Milliseconds(300);
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok());
  absl::Time start = absl::Now();
  auto got = (*client)->GetSession("x");
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_EQ((*client)->rpc_count("GetSession"), 1);
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_GE(took, absl::Milliseconds(250));
  hung->Shutdown(std::chrono::system_clock::now());
  cq->Shutdown();
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
  }
}

TEST(ClientTokenTest, SendsTheBearerToken) {
  auto tokens = ParseTokens("secret-admin-token admin\n", "test");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  Authorizer auth(*tokens);
  ServerConfig config;
  config.authorizer = &auth;
  ServerHarness harness(StoreKind::kMemory, config);
  ClientOptions o = FastOptions();
  o.server = harness.address();
  auto anonymous = Client::Connect(o);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ((*anonymous)->GetSession("x").status().code(), absl::StatusCode::kUnauthenticated);
  o.token = "secret-admin-token";
  auto with_token = Client::Connect(o);
  ASSERT_TRUE(with_token.ok());
  EXPECT_EQ((*with_token)->GetSession("x").status().code(), absl::StatusCode::kNotFound);
}

// Owner and follower ranks over 200 steps reproduce a local Schedule bit for bit; the owner
// makes one Step RPC per step and no reads, the follower one GetLR per K steps.
TEST_F(ClientTest, RemoteScheduleMatchesALocalSchedule) {
  ASSERT_TRUE(client_->CreateSession("rs", kCosineSpec, {}).ok());
  auto local = Schedule::Create(nlohmann::json::parse(kCosineSpec));
  ASSERT_TRUE(local.ok());
  constexpr int kSteps = 200, kWindow = 16;
  auto owner = RemoteSchedule::Attach(client_.get(), "rs", Window(kWindow));
  ASSERT_TRUE(owner.ok()) << owner.status();
  // The follower has a client of its own, so its RPCs are counted apart.
  ClientOptions o = FastOptions();
  o.server = harness_.address();
  auto follower_client = Client::Connect(o);
  ASSERT_TRUE(follower_client.ok());
  auto follower = RemoteSchedule::Attach(follower_client->get(), "rs", Follow(kWindow));
  ASSERT_TRUE(follower.ok()) << follower.status();
  const int64_t steps_before = client_->rpc_count("Step");
  for (int i = 0; i < kSteps; ++i) {
    for (RemoteSchedule* r : {owner->get(), follower->get()}) {
      ASSERT_EQ(r->epoch(), (*local)->last_epoch()) << i;
      for (size_t g = 0; g < 2; ++g) {
        EXPECT_EQ(r->lr(g), (*local)->param_groups()[g].lr) << i;
      }
      EXPECT_EQ(r->momentum(0), std::optional<double>(0.9));
      EXPECT_EQ(r->momentum(1), std::optional<double>(0.0));
    }
    ASSERT_TRUE((*owner)->Step().ok());
    ASSERT_TRUE((*follower)->Step().ok());
    ASSERT_TRUE((*local)->Step({}).ok());
  }
  EXPECT_EQ(client_->rpc_count("Step") - steps_before, kSteps);
  EXPECT_EQ(client_->rpc_count("GetLR"), 0);
  EXPECT_EQ((*follower_client)->rpc_count("GetLR"), (kSteps + kWindow - 1) / kWindow);
  EXPECT_EQ((*follower_client)->rpc_count("Step"), 0);
}

// Megatron's schedule (issue #17): Step's increment, and weight_decay in the values.
TEST_F(ClientTest, MegatronIncrementAndWeightDecay) {
  const std::string spec = R"J({"optimizer": {"type": "AdamW", "param_groups": [{"lr": 0.0}]},
      "scheduler": {"type": "megatron.OptimizerParamScheduler", "init_lr": 0.0, "max_lr": 0.001,
        "min_lr": 1e-05, "lr_warmup_steps": 10, "lr_decay_steps": 100,
        "lr_decay_style": "cosine", "start_wd": 0.0, "end_wd": 0.1, "wd_incr_steps": 100,
        "wd_incr_style": "linear"}})J";
  ASSERT_TRUE(client_->CreateSession("mg", spec, {}).ok());
  auto local = Schedule::Create(nlohmann::json::parse(spec));
  ASSERT_TRUE(local.ok());
  StepArgs args = IfEpoch(0);
  args.increment = 32;
  auto st = client_->Step("mg", args);
  ASSERT_TRUE(st.ok()) << st.status();
  StepRequest req;
  req.increment = 32;
  ASSERT_TRUE((*local)->Step(req).ok());
  EXPECT_EQ(st->session().last_epoch(), 32);
  ASSERT_TRUE(st->session().groups(0).has_weight_decay());
  EXPECT_EQ(st->session().groups(0).weight_decay(), *(*local)->param_groups()[0].weight_decay);
  EXPECT_EQ(st->session().groups(0).lr(), (*local)->param_groups()[0].lr);
  auto owner = RemoteSchedule::Attach(client_.get(), "mg", {});
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_EQ((*owner)->weight_decay(0), (*local)->param_groups()[0].weight_decay);
  // torch's types: no weight_decay, and no increment.
  ASSERT_TRUE(client_->CreateSession("cos", kCosineSpec, {}).ok());
  auto cos = RemoteSchedule::Attach(client_.get(), "cos", {});
  ASSERT_TRUE(cos.ok());
  EXPECT_EQ((*cos)->weight_decay(0), std::nullopt);
  StepArgs bad;
  bad.increment = 2;
  auto refused = client_->Step("cos", bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("increment"), std::string::npos) << refused.status();
}

TEST_F(ClientTest, RemoteScheduleFallsBackToPerStepCallsForPlateau) {
  ASSERT_TRUE(client_->CreateSession("pl", kPlateauSpec, {}).ok());
  auto owner = RemoteSchedule::Attach(client_.get(), "pl", {});
  auto follower = RemoteSchedule::Attach(client_.get(), "pl", Follow(8));
  ASSERT_TRUE(owner.ok() && follower.ok());
  EXPECT_FALSE((*owner)->deterministic());
  const double lr0 = (*owner)->lr();
  const int64_t getlr_before = client_->rpc_count("GetLR");
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE((*owner)->Step(1.0).ok());  // a flat metric: patience 1 halves the lr
    ASSERT_TRUE((*follower)->Step().ok());
    EXPECT_EQ((*follower)->lr(), (*owner)->lr());
    EXPECT_EQ((*follower)->epoch(), (*owner)->epoch());
  }
  EXPECT_LT((*owner)->lr(), lr0);
  EXPECT_EQ(client_->rpc_count("GetLR") - getlr_before, 6);
}

}  // namespace
}  // namespace lrsched
