// Copyright lrsched authors.
//
// Bad AmendSession and GetHistory requests: each gets the right code and a message naming the
// field (or, for what the engine decides, the engine's own words), nothing changes, and the
// server goes on serving.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/amend_util.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class AmendErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h_ = std::make_unique<ServerHarness>(StoreKind::kMemory);
    ASSERT_TRUE(Create(stub(), "good", kCosineSpec).ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step(stub(), "good").ok());
    ASSERT_TRUE(Get(stub(), "good", &before_).ok());
  }
  v1::LrScheduler::Stub& stub() { return h_->stub(); }

  // Refused with `code`, the message starting with `prefix`; the session unchanged; the
  // server still stepping and amending.
  void ExpectRefused(const v1::AmendSessionRequest& req, grpc::StatusCode code,
                     const std::string& prefix) {
    SCOPED_TRACE(req.ShortDebugString().substr(0, 200));
    grpc::Status st = Amend(stub(), req);
    EXPECT_EQ(st.error_code(), code) << st.error_message();
    EXPECT_THAT(st.error_message(), StartsWith(prefix));
    v1::Session now;
    ASSERT_TRUE(Get(stub(), "good", &now).ok());
    EXPECT_EQ(now.revision(), before_.revision());
    EXPECT_EQ(Lrs(now), Lrs(before_));
    v1::AmendSessionRequest dry = ScaleReq("good", 0.5);
    dry.set_dry_run(true);
    EXPECT_TRUE(Amend(stub(), dry).ok());
  }
  void ExpectInvalid(const v1::AmendSessionRequest& req, const std::string& field) {
    ExpectRefused(req, grpc::StatusCode::INVALID_ARGUMENT, field + ":");
  }
  void ExpectHistoryInvalid(const v1::GetHistoryRequest& req, const std::string& field) {
    v1::GetHistoryResponse resp;
    grpc::Status st = stub().GetHistory(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_THAT(st.error_message(), StartsWith(field + ":"));
    EXPECT_TRUE(Step(stub(), "good").ok());
  }

  v1::Session before_;
  std::unique_ptr<ServerHarness> h_;
};

TEST_F(AmendErrorsTest, NameAndKind) {
  ExpectInvalid(ScaleReq("", 0.5), "name");
  ExpectInvalid(ScaleReq("a b", 0.5), "name");
  v1::AmendSessionRequest none;
  none.set_name("good");
  ExpectInvalid(none, "kind");
}

TEST_F(AmendErrorsTest, JsonArguments) {
  ExpectInvalid(ContinueReq("good", ""), "continue_with_json");
  ExpectInvalid(ContinueReq("good", "{not json"), "continue_with_json");
  ExpectInvalid(ContinueReq("good", "[1, 2]"), "continue_with_json");
  ExpectInvalid(ContinueReq("good", std::string(70000, ' ') + "{}"), "continue_with_json");
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "{\"a\": ";
  deep += "1";
  for (int i = 0; i < 40; ++i) deep += "}";
  ExpectInvalid(ContinueReq("good", deep), "continue_with_json");
  v1::AmendSessionRequest rep;
  rep.set_name("good");
  for (const char* bad : {"", "{", "7", "{}"}) {
    rep.set_reparameterize_json(bad);
    ExpectInvalid(rep, "reparameterize_json");
  }
  rep.set_reparameterize_json(deep);
  ExpectInvalid(rep, "reparameterize_json");
}

TEST_F(AmendErrorsTest, ScaleFactorAndGroups) {
  for (double f : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity()}) {
    ExpectInvalid(ScaleReq("good", f), "scale.factor");
  }
  v1::AmendSessionRequest req = ScaleReq("good", 0.5);
  req.mutable_scale()->add_groups(-1);
  ExpectInvalid(req, "scale.groups[0]");
  req.mutable_scale()->clear_groups();
  req.mutable_scale()->add_groups(1);
  req.mutable_scale()->add_groups(1);
  ExpectInvalid(req, "scale.groups[1]");
  req.mutable_scale()->clear_groups();
  req.mutable_scale()->add_groups(0);
  req.mutable_scale()->add_groups(2);  // the session has 2 groups
  ExpectInvalid(req, "scale.groups[1]");
}

TEST_F(AmendErrorsTest, ReasonAtEpochAndWindow) {
  v1::AmendSessionRequest req = ScaleReq("good", 0.5);
  req.set_reason(std::string(1025, 'r'));
  ExpectInvalid(req, "reason");
  req.set_reason(std::string(1024, 'r'));
  EXPECT_TRUE(Amend(stub(),
                    [&] {
                      auto dry = req;
                      dry.set_dry_run(true);
                      return dry;
                    }())
                  .ok());
  ExpectInvalid(ScaleReq("good", 0.5, -1), "at_epoch");
  req = ScaleReq("good", 0.5);
  req.set_dry_run(true);
  req.set_dry_run_window(-1);
  ExpectInvalid(req, "dry_run_window");
  req.set_dry_run_window(10001);
  ExpectInvalid(req, "dry_run_window");
}

TEST_F(AmendErrorsTest, EngineRefusalsKeepTheirCodeAndWords) {
  // The past is never rewritten: the session is at epoch 3.
  grpc::Status st = Amend(stub(), ScaleReq("good", 0.5, 2));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("at_epoch"));
  ExpectRefused(ScaleReq("good", 0.5, 2), grpc::StatusCode::FAILED_PRECONDITION, "");

  v1::AmendSessionRequest rep;
  rep.set_name("good");
  rep.set_reparameterize_json(R"({"no_such_argument": 3})");
  st = Amend(stub(), rep);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("no_such_argument"));
  ExpectRefused(rep, grpc::StatusCode::INVALID_ARGUMENT, "");

  rep.set_reparameterize_json(R"({"type": "StepLR"})");
  st = Amend(stub(), rep);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("type"));
  ExpectRefused(rep, grpc::StatusCode::FAILED_PRECONDITION, "");

  // A spec the engine cannot build.
  st = Amend(stub(), ContinueReq("good", R"({"type": "NoSuchLR"})"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("NoSuchLR"));
}

TEST_F(AmendErrorsTest, MetricDrivenScheduleIsDryRunOnlyAtTheCurrentEpoch) {
  ASSERT_TRUE(Create(stub(), "plateau", kPlateauSpec).ok());
  v1::AmendSessionRequest req = ScaleReq("plateau", 0.5);
  req.set_dry_run(true);  // default window: 100 epochs ahead, which need metrics
  grpc::Status st = Amend(stub(), req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_THAT(st.error_message(), StartsWith("dry_run:"));
  req.set_dry_run_window(1);
  v1::AmendSessionResponse r;
  st = Amend(stub(), req, &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(r.amended_size(), 1);
  EXPECT_EQ(r.amended(0).groups(0).lr(), 0.5 * r.current(0).groups(0).lr());
  EXPECT_TRUE(Step(stub(), "good").ok());
}

TEST_F(AmendErrorsTest, HistoryRequests) {
  v1::GetHistoryRequest req;
  ExpectHistoryInvalid(req, "name");
  req.set_name("good");
  req.set_page_size(-1);
  ExpectHistoryInvalid(req, "page_size");
  req.set_page_size(100001);
  ExpectHistoryInvalid(req, "page_size");
  req.set_page_size(10);
  req.set_page_token("not a token");
  ExpectHistoryInvalid(req, "page_token");
  req.set_page_token("aGlzdG9yeTp4");  // "history:x"
  ExpectHistoryInvalid(req, "page_token");
  req.clear_page_token();
  req.set_from_epoch(5);
  req.set_to_epoch(4);
  ExpectHistoryInvalid(req, "to_epoch");
  v1::GetHistoryResponse resp;
  req.set_name("never");
  req.clear_to_epoch();
  EXPECT_EQ(stub().GetHistory(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace lrsched::test_support
