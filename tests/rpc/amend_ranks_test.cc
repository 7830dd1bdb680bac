// Copyright lrsched authors.
//
// 16 ranks stepping one session with if_epoch (as DDP ranks do) while an operator amends it:
// a scale now, a continue_with at a future epoch, a scale at an explicit current epoch. Every
// value any rank sees for an epoch is the one the engine gives with the amendments made where
// they were made, and each epoch is stepped exactly once (none skipped, none twice). So every
// rank sees the new values from the same epoch on: from at_epoch for one made ahead; for one
// made at the current epoch, from the next one (the epoch in flight was already served to the
// ranks that stepped into it before the amendment: they may hold either value for it, which
// is why README advises at_epoch = last_epoch + 1 for a switch at one step). Both stores.
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/rpc/amend_util.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using json = nlohmann::json;

class AmendRanksTest : public ::testing::TestWithParam<StoreKind> {};

TEST_P(AmendRanksTest, SixteenRanksSeeAmendmentsFromTheSameEpoch) {
  constexpr int kRanks = 16, kEpochs = 60;
  ServerHarness h(GetParam());
  ASSERT_TRUE(Create(h.stub(), "job", kCosineSpec).ok());

  std::mutex mu;
  std::map<int64_t, std::vector<std::vector<double>>> seen;  // epoch -> every rank's lrs
  std::atomic<int> advanced{0};
  std::atomic<int> failures{0};
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  auto rank = [&](int r) {
    auto stub = h.NewStub();
    for (int64_t e = 0; e < kEpochs && absl::Now() < deadline; ++e) {
      v1::StepRequest req;
      req.set_name("job");
      req.set_if_epoch(e);
      v1::StepResponse resp;
      grpc::Status st = StepOnce(*stub, req, &resp);
      if (!st.ok()) {
        ++failures;
        ADD_FAILURE() << "rank " << r << " epoch " << e << ": " << st.error_message();
        return;
      }
      if (resp.advanced()) ++advanced;
      {
        std::lock_guard<std::mutex> l(mu);
        seen[resp.session().last_epoch()].push_back(Lrs(resp.session()));
      }
      absl::SleepFor(absl::Milliseconds(2));  // give the operator epochs to act between
    }
  };

  // The operator: each amendment as made, with the epoch the session stood at then.
  std::vector<v1::AmendSessionResponse> made;
  auto operate = [&] {
    auto stub = h.NewStub();
    auto epoch_now = [&]() -> int64_t {
      v1::Session s;
      return Get(*stub, "job", &s).ok() ? s.last_epoch() : -1;
    };
    auto wait_for = [&](int64_t epoch) {
      while (epoch_now() < epoch && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    };
    v1::AmendSessionResponse r;
    wait_for(5);
    grpc::Status st = Amend(*stub, ScaleReq("job", 0.5), &r);  // now
    ASSERT_TRUE(st.ok()) << st.error_message();
    made.push_back(r);
    wait_for(12);
    const int64_t future = epoch_now() + 6;
    st = Amend(*stub, ContinueReq("job", R"({"type": "ExponentialLR", "gamma": 0.9})", future), &r);
    ASSERT_TRUE(st.ok()) << st.error_message();
    made.push_back(r);
    wait_for(25);
    // At the current epoch, named: the ranks may move on before it lands (then refused, and
    // tried again at the new current epoch), bounded.
    for (int attempt = 0; attempt < 50; ++attempt) {
      st = Amend(*stub, ScaleReq("job", 3.0, epoch_now()), &r);
      if (st.error_code() != grpc::StatusCode::FAILED_PRECONDITION) break;
    }
    ASSERT_TRUE(st.ok()) << st.error_message();
    made.push_back(r);
  };

  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) threads.emplace_back(rank, r);
  std::thread op(operate);
  for (auto& t : threads) t.join();
  op.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_EQ(made.size(), 3u);

  // Exactly once per epoch.
  v1::Session end;
  ASSERT_TRUE(Get(h.stub(), "job", &end).ok());
  EXPECT_EQ(end.last_epoch(), kEpochs);
  EXPECT_EQ(advanced.load(), kEpochs);

  // The engine's values with the amendments made where they were made.
  auto local = Local(kCosineSpec);
  std::map<int64_t, std::vector<double>> expected;
  std::map<int64_t, std::vector<double>> before_now;  // an at-once amendment's epoch: before it
  expected[0] = Lrs(*local);
  size_t next = 0;
  while (local->last_epoch() < kEpochs) {
    while (next < made.size() && made[next].session().last_epoch() == local->last_epoch()) {
      const v1::Amendment& a = made[next].amendment();
      auto kind = ParseAmendmentKind(a.kind());
      ASSERT_TRUE(kind.ok());
      if (a.at_epoch() == local->last_epoch() && !before_now.count(local->last_epoch())) {
        before_now[local->last_epoch()] = Lrs(*local);
      }
      ASSERT_TRUE(
          local->Amend(LocalAmendment(*kind, json::parse(a.args_json()), a.at_epoch())).ok());
      expected[local->last_epoch()] = Lrs(*local);  // an amendment now changes this epoch's
      ++next;
    }
    ASSERT_TRUE(local->Step({}).ok());
    expected[local->last_epoch()] = Lrs(*local);
  }
  ASSERT_EQ(next, made.size()) << "an amendment was made at an epoch the replay never stood at";
  // What each amendment's reply showed is what the ranks then saw for that epoch.
  for (const auto& r : made) {
    EXPECT_EQ(Lrs(r.session()), expected[r.session().last_epoch()]);
  }
  int checked = 0;
  for (const auto& [epoch, all] : seen) {
    for (const auto& lrs : all) {
      auto in_flight = before_now.find(epoch);
      if (in_flight != before_now.end() && lrs == in_flight->second) continue;  // see above
      EXPECT_EQ(lrs, expected[epoch]) << "epoch " << epoch;
      ++checked;
    }
  }
  EXPECT_GE(checked, kRanks * kEpochs / 2);
  // The amendments changed the values: the last epochs differ from the plain schedule's.
  auto plain = Local(kCosineSpec);
  for (int i = 0; i < kEpochs; ++i) ASSERT_TRUE(plain->Step({}).ok());
  EXPECT_NE(Lrs(*plain), expected[kEpochs]);
}

INSTANTIATE_TEST_SUITE_P(Stores, AmendRanksTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite), StoreKindName);

}  // namespace
}  // namespace lrsched::test_support
