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

TEST_P(ServerStateTest, ExportOfMissingSessionIsNotFound) {
  v1::ExportStateResponse ex;
  EXPECT_EQ(Export(stub(), "none", &ex).error_code(), grpc::StatusCode::NOT_FOUND);
}

INSTANTIATE_TEST_SUITE_P(Stores, ServerStateTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kSqlite), StoreKindName);

}  // namespace
}  // namespace lrsched::test_support
