// Copyright lrsched authors.
//
// Many clients at once, Watch streams, and restarts on the same data.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using json = nlohmann::json;

// A reusable barrier: Wait() returns once `n` threads are waiting.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    const int64_t gen = generation_;
    if (++waiting_ == n_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(l, [&] { return generation_ != gen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const int n_;
  int waiting_ = 0;
  int64_t generation_ = 0;
};

class ServerConcurrencyTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override { h_ = std::make_unique<ServerHarness>(GetParam()); }
  v1::LrScheduler::Stub& stub() { return h_->stub(); }
  std::unique_ptr<ServerHarness> h_;
};

// 64 ranks all "step from epoch k" for k = 0..49: each epoch advances exactly once.
TEST_P(ServerConcurrencyTest, SixtyFourClientsStepOneSessionWithIfEpoch) {
  constexpr int kClients = 64;
  constexpr int kEpochs = 50;
  ASSERT_TRUE(Create(stub(), "shared", kCosineSpec).ok());
  Barrier barrier(kClients);
  std::atomic<int> advanced{0}, failures{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      auto my = c % 8 == 0 ? h_->NewStub() : nullptr;  // some on their own connections
      v1::LrScheduler::Stub& st = my ? *my : stub();
      for (int k = 0; k < kEpochs; ++k) {
        barrier.Wait();
        v1::StepRequest req;
        req.set_name("shared");
        req.set_if_epoch(k);
        v1::StepResponse r;
        grpc::Status s = StepOnce(st, req, &r);
        if (!s.ok()) {
          ++failures;
          continue;
        }
        if (r.advanced()) ++advanced;
        if (r.session().last_epoch() != k + 1) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(advanced.load(), kEpochs);
  v1::Session s;
  ASSERT_TRUE(Get(stub(), "shared", &s).ok());
  EXPECT_EQ(s.last_epoch(), kEpochs);
  EXPECT_EQ(s.revision(), kEpochs + 1);
  auto ref = *Schedule::Create(json::parse(kCosineSpec));
  for (int i = 0; i < kEpochs; ++i) ASSERT_TRUE(ref->Step({}).ok());
  EXPECT_EQ(s.groups(0).lr(), ref->param_groups()[0].lr);
  EXPECT_EQ(s.groups(1).lr(), ref->param_groups()[1].lr);
}

TEST_P(ServerConcurrencyTest, ManySessionsStepInParallel) {
  constexpr int kSessions = 16;
  constexpr int kSteps = 30;
  for (int i = 0; i < kSessions; ++i) {
    ASSERT_TRUE(Create(stub(), absl::StrCat("par/", i), kStepLRSpec).ok());
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kSteps; ++k) {
        if (!Step(stub(), absl::StrCat("par/", i)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < kSessions; ++i) {
    v1::Session s;
    ASSERT_TRUE(Get(stub(), absl::StrCat("par/", i), &s).ok());
    EXPECT_EQ(s.last_epoch(), kSteps);
  }
  Store::Stats stats = h_->store()->stats();
  EXPECT_GE(stats.commits, kSessions * (kSteps + 1));
  EXPECT_LE(stats.transactions, stats.commits);
}

TEST_P(ServerConcurrencyTest, WatchSeesEveryStepAndEndsOnDelete) {
  ASSERT_TRUE(Create(stub(), "w", kCosineSpec).ok());
  v1::WatchRequest req;
  req.set_name("w");
  auto ctx = Ctx(absl::Seconds(30));
  auto reader = stub().Watch(ctx.get(), req);
  v1::Session s;
  ASSERT_TRUE(reader->Read(&s));
  EXPECT_EQ(s.revision(), 1);
  EXPECT_EQ(s.last_epoch(), 0);
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(Step(stub(), "w").ok());
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(reader->Read(&s));
    EXPECT_EQ(s.last_epoch(), i);
    EXPECT_EQ(s.revision(), i + 1);
  }
  ASSERT_TRUE(Delete(stub(), "w").ok());
  EXPECT_FALSE(reader->Read(&s));
  grpc::Status end = reader->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::NOT_FOUND) << end.error_message();
}

TEST_P(ServerConcurrencyTest, WatchHonoursCancellationAndBadRequests) {
  ASSERT_TRUE(Create(stub(), "w", kCosineSpec).ok());
  for (int round = 0; round < 3; ++round) {
    v1::WatchRequest req;
    req.set_name("w");
    auto ctx = Ctx(absl::Seconds(30));
    auto reader = stub().Watch(ctx.get(), req);
    v1::Session s;
    ASSERT_TRUE(reader->Read(&s));
    ctx->TryCancel();
    while (reader->Read(&s)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    ASSERT_TRUE(Step(stub(), "w").ok());  // the server notices the closed watcher
  }
  for (const char* name : {"nope", "bad name"}) {
    v1::WatchRequest req;
    req.set_name(name);
    auto ctx = Ctx();
    auto reader = stub().Watch(ctx.get(), req);
    v1::Session s;
    EXPECT_FALSE(reader->Read(&s));
    grpc::Status end = reader->Finish();
    EXPECT_EQ(end.error_code(), std::string(name) == "nope" ? grpc::StatusCode::NOT_FOUND
                                                            : grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_P(ServerConcurrencyTest, WatchEndsOnShutdown) {
  ASSERT_TRUE(Create(stub(), "w", kCosineSpec).ok());
  v1::WatchRequest req;
  req.set_name("w");
  auto ctx = Ctx(absl::Seconds(30));
  auto reader = stub().Watch(ctx.get(), req);
  v1::Session s;
  ASSERT_TRUE(reader->Read(&s));
  absl::Time t0 = absl::Now();
  h_->Stop(absl::Seconds(20));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));  // the watch did not hold the shutdown
  EXPECT_FALSE(reader->Read(&s));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

// A restarted server on the same data has the same sessions, to the bit, and they go on
// stepping as if nothing happened.
TEST_P(ServerConcurrencyTest, RestartKeepsSessionsBitExactly) {
  struct Case {
    const char* name;
    const char* spec;
    int steps;
  };
  const Case cases[] = {{"cos", kCosineSpec, 7},
                        {"plateau", kPlateauSpec, 5},
                        {"onecycle", kOneCycleSpec, 3},
                        {"lambda", kLambdaSpec, 9},
                        {"steplr", kStepLRSpec, 4}};
  std::map<std::string, std::unique_ptr<Schedule>> refs;
  for (const Case& c : cases) {
    ASSERT_TRUE(Create(stub(), c.name, c.spec, nullptr, {{"case", c.name}}).ok());
    refs[c.name] = *Schedule::Create(json::parse(c.spec));
    for (int i = 0; i < c.steps; ++i) {
      v1::StepRequest req;
      req.set_name(c.name);
      StepRequest local;
      if (std::string(c.name) == "plateau") {
        req.set_metric(1.0 / (i + 1) + (i % 2));
        local.metric = req.metric();
      }
      ASSERT_TRUE(StepOnce(stub(), req).ok());
      ASSERT_TRUE(refs[c.name]->Step(local).ok());
    }
  }
  ASSERT_TRUE(Create(stub(), "gone", kCosineSpec).ok());
  ASSERT_TRUE(Delete(stub(), "gone").ok());
  std::map<std::string, std::string> sessions, exports;
  for (const Case& c : cases) {
    v1::Session s;
    v1::ExportStateResponse ex;
    ASSERT_TRUE(Get(stub(), c.name, &s).ok());
    ASSERT_TRUE(Export(stub(), c.name, &ex).ok());
    sessions[c.name] = s.SerializeAsString();
    exports[c.name] = ex.state_json() + ex.torch_state_dict_json() + ex.torch_param_groups_json();
  }

  h_->Restart();

  EXPECT_EQ(Get(stub(), "gone").error_code(), grpc::StatusCode::NOT_FOUND);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::Session s;
    v1::ExportStateResponse ex;
    ASSERT_TRUE(Get(stub(), c.name, &s).ok());
    ASSERT_TRUE(Export(stub(), c.name, &ex).ok());
    EXPECT_EQ(s.SerializeAsString(), sessions[c.name]);
    EXPECT_EQ(ex.state_json() + ex.torch_state_dict_json() + ex.torch_param_groups_json(),
              exports[c.name]);
    v1::StepRequest req;
    req.set_name(c.name);
    StepRequest local;
    if (std::string(c.name) == "plateau") {
      req.set_metric(0.25);
      local.metric = 0.25;
    }
    v1::StepResponse r;
    ASSERT_TRUE(StepOnce(stub(), req, &r).ok());
    ASSERT_TRUE(refs[c.name]->Step(local).ok());
    EXPECT_EQ(r.session().last_epoch(), refs[c.name]->last_epoch());
    for (int g = 0; g < r.session().groups_size(); ++g) {
      EXPECT_EQ(r.session().groups(g).lr(), refs[c.name]->param_groups()[g].lr);
    }
  }
}

// Creates and deletes racing on one name never leave the registry and the store disagreeing.
TEST_P(ServerConcurrencyTest, RacingCreatesAndDeletesStayConsistent) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        if ((i + t) % 3 == 0) {
          Delete(stub(), "race");
        } else if ((i + t) % 3 == 1) {
          Create(stub(), "race", kCosineSpec);
        } else {
          Step(stub(), "race");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  v1::Session before;
  grpc::Status s = Get(stub(), "race", &before);
  h_->Restart();
  v1::Session after;
  grpc::Status s2 = Get(stub(), "race", &after);
  EXPECT_EQ(s.error_code(), s2.error_code());
  if (s.ok()) {
    EXPECT_EQ(before.SerializeAsString(), after.SerializeAsString());
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, ServerConcurrencyTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite), StoreKindName);

}  // namespace
}  // namespace lrsched::test_support
