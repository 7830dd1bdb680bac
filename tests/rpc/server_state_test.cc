// Copyright lrsched authors.
//
// ExportState and ImportState over the real service (both stores): an export imported under
// another name, or rebuilt from torch's checkpoint view, continues bit-exactly.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

class ServerStateTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override { h_ = std::make_unique<ServerHarness>(GetParam()); }
  v1::LrScheduler::Stub& stub() { return h_->stub(); }
  std::unique_ptr<ServerHarness> h_;
};

TEST_P(ServerStateTest, ExportImportContinuesBitExactly) {
  ASSERT_TRUE(Create(stub(), "src", kLambdaSpec, nullptr, {{"from", "src"}}).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Step(stub(), "src").ok());
  v1::ExportStateResponse ex;
  ASSERT_TRUE(Export(stub(), "src", &ex).ok());
  json state = json::parse(ex.state_json());
  EXPECT_EQ(state["name"], "src");
  EXPECT_EQ(state["labels"]["from"], "src");
  EXPECT_EQ(state["format"], "lrsched.schedule");
  EXPECT_EQ(json::parse(ex.torch_state_dict_json())["last_epoch"], 5);
  EXPECT_EQ(json::parse(ex.torch_param_groups_json()).size(), 1u);

  v1::ImportStateRequest imp;
  imp.set_name("copy");
  imp.set_state_json(ex.state_json());
  v1::Session copy;
  ASSERT_TRUE(stub().ImportState(Ctx().get(), imp, &copy).ok());
  EXPECT_EQ(copy.labels().at("from"), "src");  // carried by the export
  EXPECT_EQ(copy.last_epoch(), 5);
  EXPECT_EQ(copy.revision(), 1);
  for (int i = 0; i < 10; ++i) {
    v1::StepResponse a, b;
    ASSERT_TRUE(Step(stub(), "src", &a).ok());
    ASSERT_TRUE(Step(stub(), "copy", &b).ok());
    ASSERT_EQ(a.session().groups(0).lr(), b.session().groups(0).lr());
    ASSERT_EQ(a.session().last_epoch(), b.session().last_epoch());
  }

  // Importing over an existing session needs `replace`.
  EXPECT_EQ(stub().ImportState(Ctx().get(), imp, &copy).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  imp.set_replace(true);
  (*imp.mutable_labels())["new"] = "yes";
  ASSERT_TRUE(stub().ImportState(Ctx().get(), imp, &copy).ok());
  EXPECT_EQ(copy.last_epoch(), 5);
  EXPECT_EQ(copy.revision(), 12);  // 1 + 10 steps + this import
  EXPECT_EQ(copy.labels().size(), 1u);
  EXPECT_EQ(copy.labels().at("new"), "yes");
}

TEST_P(ServerStateTest, ImportFromTorchCheckpoint) {
  ASSERT_TRUE(Create(stub(), "src", kCosineSpec).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step(stub(), "src").ok());
  v1::ExportStateResponse ex;
  ASSERT_TRUE(Export(stub(), "src", &ex).ok());
  // The spec whose param groups are the checkpoint's, plus scheduler.state_dict().
  json spec = json::parse(kCosineSpec);
  spec["optimizer"]["param_groups"] = json::parse(ex.torch_param_groups_json());
  v1::ImportStateRequest imp;
  imp.set_name("fromtorch");
  imp.mutable_torch()->set_spec_json(spec.dump());
  imp.mutable_torch()->set_state_dict_json(ex.torch_state_dict_json());
  v1::Session s;
  ASSERT_TRUE(stub().ImportState(Ctx().get(), imp, &s).ok());
  EXPECT_EQ(s.last_epoch(), 3);
  v1::StepResponse a, b;
  ASSERT_TRUE(Step(stub(), "src", &a).ok());
  ASSERT_TRUE(Step(stub(), "fromtorch", &b).ok());
  EXPECT_EQ(a.session().groups(0).lr(), b.session().groups(0).lr());
  EXPECT_EQ(a.session().groups(1).lr(), b.session().groups(1).lr());

  imp.mutable_torch()->set_state_dict_json(R"({"last_epoch": "x"})");
  grpc::Status st = stub().ImportState(Ctx().get(), imp, &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("torch: "));
  imp.clear_torch();
  st = stub().ImportState(Ctx().get(), imp, &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("source"));
}

// if_revision makes a replace conditional on the state the caller read: N ranks restoring one
// checkpoint replace the session once, and a stale reader cannot rewind a session that moved on.
TEST_P(ServerStateTest, ReplaceIfRevisionReplacesOnlyTheStateRead) {
  ASSERT_TRUE(Create(stub(), "run", kLambdaSpec).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step(stub(), "run").ok());
  v1::ExportStateResponse ex;
  ASSERT_TRUE(Export(stub(), "run", &ex).ok());
  ASSERT_EQ(ex.session().revision(), 4);
  ASSERT_TRUE(Step(stub(), "run").ok());  // revision 5, epoch 4

  v1::ImportStateRequest imp;
  imp.set_name("run");
  imp.set_state_json(ex.state_json());
  imp.set_replace(true);
  imp.set_if_revision(4);  // stale: the session moved on
  v1::Session s;
  grpc::Status st = stub().ImportState(Ctx().get(), imp, &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("is at revision 5, not 4"));
  v1::Session now;
  ASSERT_TRUE(Get(stub(), "run", &now).ok());
  EXPECT_EQ(now.last_epoch(), 4);  // unchanged

  imp.set_if_revision(5);
  ASSERT_TRUE(stub().ImportState(Ctx().get(), imp, &s).ok());
  EXPECT_EQ(s.last_epoch(), 3);
  EXPECT_EQ(s.revision(), 6);
  imp.set_if_revision(5);  // a second rank with the same stale read changes nothing
  EXPECT_EQ(stub().ImportState(Ctx().get(), imp, &s).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  imp.set_name("absent");  // conditional on a session that is not there
  EXPECT_EQ(stub().ImportState(Ctx().get(), imp, &s).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get(stub(), "absent", &now).error_code(), grpc::StatusCode::NOT_FOUND);
  imp.clear_if_revision();  // and the name stays free for an unconditional import
  ASSERT_TRUE(stub().ImportState(Ctx().get(), imp, &s).ok());
  EXPECT_EQ(s.last_epoch(), 3);
}

TEST_P(ServerStateTest, ExportOfMissingSessionIsNotFound) {
  v1::ExportStateResponse ex;
  EXPECT_EQ(Export(stub(), "none", &ex).error_code(), grpc::StatusCode::NOT_FOUND);
}

INSTANTIATE_TEST_SUITE_P(Stores, ServerStateTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite), StoreKindName);

}  // namespace
}  // namespace lrsched::test_support
