// Copyright lrsched authors.
//
// Registry::TryStepAsync's verdicts: kHeavy before any work when the step costs more than the
// caller's threshold, kAnswered with the outcome, kBlocking when it cannot start without
// waiting, and kBlocking through `done` when a shared store's compare is lost (another replica
// stepped first), after which the blocking Step re-reads and decides.
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "server/registry/registry.h"
#include "server/store/shared_store.h"
#include "server/store/testing/memory_store.h"

namespace lrsched {
namespace {

using nlohmann::json;
using Verdict = Registry::StepVerdict;

constexpr int64_t kNoLimit = int64_t{1} << 40;

const json& Spec() {
  static const json* spec = new json(json::parse(
      R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
          "scheduler": {"type": "CosineAnnealingLR", "T_max": 40}})"));
  return *spec;
}

// A store shared with other replicas (as etcd is), committing "asynchronously" (at once, in
// the caller's thread), with a change feed that is up but never reports: enough for
// TryStepAsync's fast path. Rows live in a MemoryStore, which injects the failures.
class SharedMemoryStore final : public SharedStore {
 public:
  absl::StatusOr<int64_t> Commit(const Mutation& m) override { return rows.Commit(m); }
  bool async_commit() const override { return true; }
  absl::Status LoadAll(
      const std::function<absl::Status(std::string_view, std::string_view, int64_t)>& fn) override {
    return rows.LoadAll(fn);
  }
  void Close() override { rows.Close(); }
  Stats stats() const override { return rows.stats(); }
  int64_t last_load_revision() const override { return 0; }
  absl::StatusOr<ReadResult> Read(std::string_view name) override {
    ReadResult out;
    absl::Status s = rows.LoadAll([&](std::string_view n, std::string_view v, int64_t rev) {
      if (n == name) out = ReadResult{true, std::string(v), rev, 0};
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }
  class Idle final : public Subscription {};
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(int64_t, ChangeListener*) override {
    return std::make_unique<Idle>();
  }

  MemoryStore rows;
};

// What `done` received, if it ran.
struct Done {
  std::optional<Verdict> verdict;
  absl::StatusOr<StepOutcome> out = absl::UnknownError("done did not run");
  Registry::StepCallback Callback() {
    return [this](Verdict v, absl::StatusOr<StepOutcome> o) {
      verdict = v;
      out = std::move(o);
    };
  }
};

TEST(RegistryStepTest, HeavyBeforeAnyWorkWhateverTheStore) {
  MemoryStore store;  // no asynchronous commits: a light step would be kBlocking
  Registry r(&store, 10);
  ASSERT_TRUE(r.Load().ok());
  ASSERT_TRUE(r.Create("s", Spec(), {}).ok());
  Done done;
  EXPECT_EQ(r.TryStepAsync("s", {}, std::nullopt, /*heavy_cost=*/0, done.Callback()),
            Verdict::kHeavy);
  EXPECT_FALSE(done.verdict.has_value());
  EXPECT_EQ(r.Get("s")->last_epoch, 0);  // nothing stepped
  EXPECT_EQ(r.TryStepAsync("s", {}, std::nullopt, kNoLimit, done.Callback()), Verdict::kBlocking);
  EXPECT_FALSE(done.verdict.has_value());
}

// A registry on a SharedMemoryStore, its feed running.
class RegistrySharedStepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.Load().ok());
    ASSERT_TRUE(registry_.StartFeed({}).ok());
  }
  void TearDown() override { registry_.StopFeed(); }

  SharedMemoryStore store_;
  Registry registry_{&store_, 10};
};

TEST_F(RegistrySharedStepTest, AnsweredOnAFreshMemory) {
  ASSERT_TRUE(registry_.Create("s", Spec(), {}).ok());
  Done done;
  EXPECT_EQ(registry_.TryStepAsync("s", {}, std::nullopt, kNoLimit, done.Callback()),
            Verdict::kAnswered);
  ASSERT_EQ(done.verdict, Verdict::kAnswered);
  ASSERT_TRUE(done.out.ok()) << done.out.status();
  EXPECT_TRUE(done.out->advanced);
  EXPECT_EQ(done.out->session.last_epoch, 1);
}

TEST_F(RegistrySharedStepTest, LostCompareIsBlockingThenTheBlockingStepDecides) {
  ASSERT_TRUE(registry_.Create("s", Spec(), {}).ok());
  // Another replica stepped first: the compare fails, as a store reports it.
  store_.rows.FailNextCommits(1, absl::FailedPreconditionError("s: revision 2, expected 1"));
  Done done;
  EXPECT_EQ(registry_.TryStepAsync("s", {}, std::nullopt, kNoLimit, done.Callback()),
            Verdict::kAnswered);
  ASSERT_EQ(done.verdict, Verdict::kBlocking);
  EXPECT_EQ(registry_.Get("s")->last_epoch, 0);  // the lost step changed nothing
  // The session's lock was released: the blocking step runs and commits.
  absl::StatusOr<StepOutcome> out = registry_.Step("s", {}, std::nullopt);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->advanced);
  EXPECT_EQ(out->session.last_epoch, 1);
}

TEST_F(RegistrySharedStepTest, UnknownNameIsBlocking) {
  Done done;
  // Perhaps created on another replica: only a re-read can tell.
  EXPECT_EQ(registry_.TryStepAsync("nope", {}, std::nullopt, kNoLimit, done.Callback()),
            Verdict::kBlocking);
  EXPECT_FALSE(done.verdict.has_value());
  EXPECT_EQ(registry_.Step("nope", {}, std::nullopt).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lrsched
