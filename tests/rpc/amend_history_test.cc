// Copyright lrsched authors.
//
// GetHistory through the server, on both stores: the spec, every amendment as recorded (kind,
// epoch, revision, reason), and the values each epoch was served, read in pages whose tokens
// chain to the end, the same after a restart; to_epoch bounds the read.
#include <map>

#include "gtest/gtest.h"
#include "tests/rpc/amend_util.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

class AmendHistoryTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override { h_ = std::make_unique<ServerHarness>(GetParam()); }
  v1::LrScheduler::Stub& stub() { return h_->stub(); }

  // Every page of `req`, concatenated; the first page's header in *first.
  std::vector<v1::EpochValues> ReadAll(v1::GetHistoryRequest req, v1::GetHistoryResponse* first,
                                       int* pages) {
    std::vector<v1::EpochValues> out;
    *pages = 0;
    for (int i = 0; i < 1000; ++i) {
      v1::GetHistoryResponse resp;
      grpc::Status st = stub().GetHistory(Ctx().get(), req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok()) break;
      if (i == 0) *first = resp;
      ++*pages;
      out.insert(out.end(), resp.epochs().begin(), resp.epochs().end());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }
  std::unique_ptr<ServerHarness> h_;
};

TEST_P(AmendHistoryTest, PagesHoldEveryEpochServedAndEveryAmendment) {
  ASSERT_TRUE(Create(stub(), "h", kCosineSpec).ok());
  std::map<int64_t, std::vector<double>> served;
  v1::Session s;
  ASSERT_TRUE(Get(stub(), "h", &s).ok());
  served[0] = Lrs(s);
  auto step = [&] {
    v1::StepResponse r;
    ASSERT_TRUE(Step(stub(), "h", &r).ok());
    served[r.session().last_epoch()] = Lrs(r.session());
  };
  for (int i = 0; i < 5; ++i) step();
  v1::AmendSessionResponse a1, a2;
  ASSERT_TRUE(Amend(stub(), ScaleReq("h", 0.5, 7), &a1).ok());  // ahead
  ASSERT_TRUE(
      Amend(stub(), ContinueReq("h", R"({"type": "ExponentialLR", "gamma": 0.8})", 10), &a2).ok());
  for (int i = 0; i < 8; ++i) step();  // to epoch 13

  v1::GetHistoryRequest req;
  req.set_name("h");
  req.set_page_size(4);
  v1::GetHistoryResponse first;
  int pages = 0;
  std::vector<v1::EpochValues> all = ReadAll(req, &first, &pages);
  EXPECT_EQ(pages, 4);  // 14 epochs, 4 a page
  EXPECT_EQ(first.first_epoch(), 0);
  EXPECT_EQ(nlohmann::json::parse(first.spec_json()), nlohmann::json::parse(kCosineSpec));
  ASSERT_EQ(first.amendments_size(), 2);
  EXPECT_EQ(first.amendments(0).kind(), "scale");
  EXPECT_EQ(first.amendments(0).at_epoch(), 7);
  EXPECT_EQ(first.amendments(0).revision(), a1.amendment().revision());
  EXPECT_EQ(first.amendments(0).reason(), "test scale");
  EXPECT_TRUE(first.amendments(0).applied());  // epoch 7 reached since
  EXPECT_EQ(first.amendments(1).kind(), "continue_with");
  EXPECT_EQ(first.amendments(1).at_epoch(), 10);
  EXPECT_TRUE(first.amendments(1).applied());
  ASSERT_EQ(all.size(), 14u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].epoch(), static_cast<int64_t>(i));
    std::vector<double> lrs;
    for (const auto& g : all[i].groups()) lrs.push_back(g.lr());
    EXPECT_EQ(lrs, served[all[i].epoch()]) << "epoch " << i;
    EXPECT_TRUE(all[i].groups(0).has_momentum());
  }

  // A range, and the same record after a restart.
  req.set_from_epoch(6);
  req.set_to_epoch(8);
  req.set_page_size(0);
  v1::GetHistoryResponse range;
  ASSERT_TRUE(stub().GetHistory(Ctx().get(), req, &range).ok());
  ASSERT_EQ(range.epochs_size(), 3);
  EXPECT_EQ(range.epochs(0).epoch(), 6);
  EXPECT_TRUE(range.next_page_token().empty());
  h_->Restart();
  req.clear_from_epoch();
  req.clear_to_epoch();
  req.set_page_size(100);
  std::vector<v1::EpochValues> again = ReadAll(req, &first, &pages);
  ASSERT_EQ(again.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(again[i].SerializeAsString(), all[i].SerializeAsString()) << i;
  }
  EXPECT_EQ(first.amendments_size(), 2);
}

INSTANTIATE_TEST_SUITE_P(Stores, AmendHistoryTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite), StoreKindName);

}  // namespace
}  // namespace lrsched::test_support
