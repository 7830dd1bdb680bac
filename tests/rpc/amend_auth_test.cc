// Copyright lrsched authors.
//
// The operator role (server/ops/auth.h): AmendSession needs operator or admin (a stepper is
// PERMISSION_DENIED), GetHistory is a reader's, operator can do what a stepper can; the tokens
// file's optional NAME column; the caller's name and role recorded with the amendment.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ops/auth.h"
#include "tests/rpc/amend_util.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

constexpr char kReader[] = "reader-0123456789abcdef";
constexpr char kStepper[] = "stepper-0123456789abcdef";
constexpr char kOperator[] = "operator-0123456789abcdef";
constexpr char kAdmin[] = "admin-0123456789abcdef";

std::vector<TokenEntry> Tokens() {
  auto t =
      ParseTokens(absl::StrCat(kReader, " reader\n", kStepper, " stepper ci-ranks\n", kOperator,
                               "\toperator  alice@example.org\n", kAdmin, " admin\n"),
                  "test");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : std::vector<TokenEntry>{};
}

TEST(OperatorRole, TableAndTokensFile) {
  EXPECT_EQ(RequiredRole("AmendSession"), Role::kOperator);
  EXPECT_EQ(RequiredRole("GetHistory"), Role::kReader);
  EXPECT_STREQ(RoleName(Role::kOperator), "operator");
  std::vector<TokenEntry> t = Tokens();
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].name, "");
  EXPECT_EQ(t[1].name, "ci-ranks");
  EXPECT_EQ(t[2].role, Role::kOperator);
  EXPECT_EQ(t[2].name, "alice@example.org");
  Authorizer auth(t);
  auto who = auth.Authenticate(absl::StrCat("Bearer ", kOperator), "AmendSession");
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->name, "alice@example.org");
  EXPECT_EQ(who->role, Role::kOperator);
  EXPECT_TRUE(auth.Check(absl::StrCat("Bearer ", kOperator), "Step").ok());
  EXPECT_EQ(auth.Check(absl::StrCat("Bearer ", kOperator), "CreateSession").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth.Check(absl::StrCat("Bearer ", kStepper), "AmendSession").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth.Check(absl::StrCat("Bearer ", kAdmin), "AmendSession").ok());
}

class AmendAuthTest : public ::testing::Test {
 protected:
  AmendAuthTest() : auth_(Tokens()), h_(StoreKind::kMemory, Config(&auth_)) {}
  static ServerConfig Config(const Authorizer* a) {
    ServerConfig c;
    c.authorizer = a;
    return c;
  }
  std::unique_ptr<grpc::ClientContext> With(const std::string& token) {
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    return ctx;
  }
  void SetUp() override {
    v1::CreateSessionRequest req;
    req.set_name("job");
    req.set_spec_json(kCosineSpec);
    v1::Session s;
    ASSERT_TRUE(h_.stub().CreateSession(With(kAdmin).get(), req, &s).ok());
  }
  Authorizer auth_;
  ServerHarness h_;
};

TEST_F(AmendAuthTest, StepperRefusedOperatorAllowedCallerRecorded) {
  v1::AmendSessionResponse resp;
  grpc::Status st = h_.stub().AmendSession(With(kStepper).get(), ScaleReq("job", 0.5), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  st = h_.stub().AmendSession(With(kReader).get(), ScaleReq("job", 0.5), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  st = h_.stub().AmendSession(With(kOperator).get(), ScaleReq("job", 0.5), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.amendment().caller(), "alice@example.org");
  EXPECT_EQ(resp.amendment().role(), "operator");
  st = h_.stub().AmendSession(With(kAdmin).get(), ScaleReq("job", 0.25), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.amendment().caller(), "");  // a token without a name
  EXPECT_EQ(resp.amendment().role(), "admin");

  // An operator steps too; a reader reads the record (GetHistory is a reader's).
  v1::StepRequest sreq;
  sreq.set_name("job");
  v1::StepResponse sresp;
  EXPECT_TRUE(h_.stub().Step(With(kOperator).get(), sreq, &sresp).ok());
  v1::GetHistoryRequest hreq;
  hreq.set_name("job");
  v1::GetHistoryResponse hresp;
  st = h_.stub().GetHistory(With(kStepper).get(), hreq, &hresp);
  EXPECT_NE(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_NE(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  st = h_.stub().GetHistory(With(kReader).get(), hreq, &hresp);
  EXPECT_NE(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  // Who amended is in the session's record, and survives in its export.
  v1::ExportStateRequest ereq;
  ereq.set_name("job");
  v1::ExportStateResponse eresp;
  ASSERT_TRUE(h_.stub().ExportState(With(kReader).get(), ereq, &eresp).ok());
  EXPECT_THAT(eresp.state_json(), ::testing::HasSubstr("alice@example.org"));
}

}  // namespace
}  // namespace lrsched::test_support
