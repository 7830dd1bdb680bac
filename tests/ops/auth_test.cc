// Copyright lrsched authors.
//
// Bearer-token authorization (server/ops/auth.h): the tokens file format, the method -> role table,
// and every method of a real in-process server called with no token, a wrong one, and each
// role's. Health checking stays open.
#include "server/ops/auth.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;

constexpr char kReader[] = "reader-0123456789abcdef";
constexpr char kStepper[] = "stepper-0123456789abcdef";
constexpr char kAdmin[] = "admin-0123456789abcdef";

const std::vector<std::string> kAllMethods = {
    "CreateSession", "GetSession", "ListSessions", "DeleteSession", "Step",         "GetLR",
    "Watch",         "Simulate",   "ExportState",  "ImportState",   "AmendSession", "GetHistory"};
const std::vector<std::string> kReads = {"GetSession", "ListSessions", "GetLR",     "Watch",
                                         "Simulate",   "ExportState",  "GetHistory"};

std::vector<TokenEntry> TestTokens() {
  auto t = ParseTokens(absl::StrCat("# roles\n", kReader, " reader\n", kStepper, " stepper\n",
                                    "\n  ", kAdmin, "\tadmin  \n"),
                       "test");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : std::vector<TokenEntry>{};
}

// --- the tokens file and the table, without a server ---------------------------------------

TEST(TokensFile, RefusesMalformedLinesNamingThem) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"tok-0123456789abcdef\n", "f.txt:1: expected TOKEN ROLE"},
      {"# c\n\ntok-0123456789abcdef reader name extra\n", "f.txt:3: expected TOKEN ROLE"},
      {"tok-0123456789abcdef reader " + std::string(65, 'n') + "\n", "f.txt:1: name longer"},
      {"tok-0123456789abcdef root\n", "f.txt:1: unknown role \"root\""},
      {"a reader\nshort admin\n", "f.txt:1: token shorter than 16"},
      {"tok-0123456789abcdef reader\ntok-0123456789abcdef admin\n", "f.txt:2: token listed twice"},
      {"# only comments\n\n", "f.txt: no tokens"},
  };
  for (const Case& c : cases) {
    auto t = ParseTokens(c.text, "f.txt");
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.message));
    // Tokens never appear in messages.
    EXPECT_THAT(std::string(t.status().message()), ::testing::Not(HasSubstr("0123456789")));
  }
  EXPECT_FALSE(LoadTokensFile("/nonexistent/tokens").ok());
}

TEST(TokensFile, TableCoversEveryMethodOfTheService) {
  const auto* desc = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      "lrsched.v1.LrScheduler");
  ASSERT_NE(desc, nullptr);
  std::vector<std::string> names;
  for (int i = 0; i < desc->method_count(); ++i) names.push_back(desc->method(i)->name());
  // A new method must be added to kMethodRoles (auth.cc) and here.
  EXPECT_THAT(names, ::testing::UnorderedElementsAreArray(kAllMethods));
  for (const std::string& m : kReads) EXPECT_EQ(RequiredRole(m), Role::kReader) << m;
  EXPECT_EQ(RequiredRole("Step"), Role::kStepper);
  EXPECT_EQ(RequiredRole("AmendSession"), Role::kOperator);
  for (const char* m : {"CreateSession", "DeleteSession", "ImportState", "SomethingNew"}) {
    EXPECT_EQ(RequiredRole(m), Role::kAdmin) << m;
  }
}

TEST(TokensFile, CheckParsesTheHeaderAndReplaceSwapsTokens) {
  Authorizer auth(TestTokens());
  EXPECT_EQ(auth.size(), 3u);
  EXPECT_TRUE(auth.Check(absl::StrCat("Bearer ", kReader), "GetLR").ok());
  EXPECT_TRUE(auth.Check(absl::StrCat("bearer ", kReader), "GetLR").ok());  // scheme: any case
  EXPECT_EQ(auth.Check(kReader, "GetLR").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Check("Bearer ", "GetLR").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Check(absl::StrCat("Bearer ", kReader, "x"), "GetLR").code(),
            absl::StatusCode::kUnauthenticated);
  auto fresh = ParseTokens("new-token-0123456789 admin\n", "new");
  ASSERT_TRUE(fresh.ok());
  auth.Replace(*fresh);
  EXPECT_EQ(auth.Check(absl::StrCat("Bearer ", kAdmin), "GetLR").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth.Check("Bearer new-token-0123456789", "ImportState").ok());
}

TEST(TokensFile, PresentedTokensAreComparedExactly) {
  Authorizer auth(TestTokens());
  // The admin token's line is "  TOKEN\tadmin  ": the file's whitespace around fields is not
  // part of the token...
  EXPECT_TRUE(auth.Check(absl::StrCat("Bearer ", kAdmin), "ImportState").ok());
  // ...and a presented token with any whitespace around it is another, unknown token.
  for (const std::string& header :
       {absl::StrCat("Bearer ", kReader, " "), absl::StrCat("Bearer  ", kReader),
        absl::StrCat("Bearer ", kReader, "\t"), absl::StrCat("Bearer \t", kReader),
        absl::StrCat("Bearer ", kReader, "\r\n"), absl::StrCat("Bearer ", kAdmin, "  ")}) {
    absl::Status s = auth.Check(header, "GetLR");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << absl::CEscape(header);
    EXPECT_EQ(s.message(), "invalid token");
  }
  // A CRLF file: the CR is whitespace at the line's end, not part of the role or the token.
  auto crlf = ParseTokens("crlf-token-0123456789 stepper\r\n", "crlf");
  ASSERT_TRUE(crlf.ok()) << crlf.status();
  auth.Replace(*crlf);
  EXPECT_TRUE(auth.Check("Bearer crlf-token-0123456789", "Step").ok());
  EXPECT_FALSE(auth.Check("Bearer crlf-token-0123456789\r", "Step").ok());
}

// --- a server with tokens -------------------------------------------------------------------

class AuthServerTest : public ::testing::Test {
 protected:
  AuthServerTest() : auth_(TestTokens()), server_(StoreKind::kMemory, Config(&auth_)) {}

  static ServerConfig Config(const Authorizer* auth) {
    ServerConfig c;
    c.authorizer = auth;
    return c;
  }

  void SetUp() override {
    ASSERT_TRUE(Invoke("CreateSession", kAdmin).ok());  // creates "a" (and "c0")
  }

  std::unique_ptr<grpc::ClientContext> With(const std::string& token) {
    auto ctx = Ctx();
    if (!token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    return ctx;
  }

  // Calls `method` with a request that succeeds for a caller allowed to make it.
  grpc::Status Invoke(const std::string& method, const std::string& token) {
    v1::LrScheduler::Stub& stub = server_.stub();
    if (method == "CreateSession") {
      v1::CreateSessionRequest req;
      req.set_name(created_++ == 0 ? "a" : absl::StrCat("c", created_));
      req.set_spec_json(kStepLRSpec);
      v1::Session resp;
      return stub.CreateSession(With(token).get(), req, &resp);
    }
    if (method == "GetSession") {
      v1::GetSessionRequest req;
      req.set_name("a");
      v1::Session resp;
      return stub.GetSession(With(token).get(), req, &resp);
    }
    if (method == "ListSessions") {
      v1::ListSessionsRequest req;
      v1::ListSessionsResponse resp;
      return stub.ListSessions(With(token).get(), req, &resp);
    }
    if (method == "DeleteSession") {
      // Something to delete, made by the admin, so only authorization can fail.
      v1::CreateSessionRequest creq;
      creq.set_name("doomed");
      creq.set_spec_json(kStepLRSpec);
      v1::Session created;
      EXPECT_TRUE(stub.CreateSession(With(kAdmin).get(), creq, &created).ok());
      v1::DeleteSessionRequest req;
      req.set_name("doomed");
      v1::DeleteSessionResponse resp;
      return stub.DeleteSession(With(token).get(), req, &resp);
    }
    if (method == "Step") {
      v1::StepRequest req;
      req.set_name("a");
      v1::StepResponse resp;
      return stub.Step(With(token).get(), req, &resp);
    }
    if (method == "GetLR") {
      v1::GetLRRequest req;
      req.set_name("a");
      req.set_window(3);
      v1::GetLRResponse resp;
      return stub.GetLR(With(token).get(), req, &resp);
    }
    if (method == "Watch") {
      v1::WatchRequest req;
      req.set_name("a");
      auto ctx = With(token);
      auto reader = stub.Watch(ctx.get(), req);
      v1::Session first;
      bool got = reader->Read(&first);
      if (got) ctx->TryCancel();  // the stream would go on; a refused one has ended
      grpc::Status s = reader->Finish();
      return got ? grpc::Status::OK : s;
    }
    if (method == "Simulate") {
      v1::SimulateRequest req;
      req.set_spec_json(kStepLRSpec);
      req.set_steps(3);
      v1::SimulateResponse resp;
      return stub.Simulate(With(token).get(), req, &resp);
    }
    if (method == "ExportState") {
      v1::ExportStateRequest req;
      req.set_name("a");
      v1::ExportStateResponse resp;
      return stub.ExportState(With(token).get(), req, &resp);
    }
    if (method == "ImportState") {
      v1::ExportStateRequest ereq;
      ereq.set_name("a");
      v1::ExportStateResponse exported;
      grpc::Status s = stub.ExportState(With(kAdmin).get(), ereq, &exported);
      if (!s.ok()) return s;
      v1::ImportStateRequest req;
      req.set_name("imported");
      req.set_state_json(exported.state_json());
      req.set_replace(true);
      v1::Session resp;
      return stub.ImportState(With(token).get(), req, &resp);
    }
    if (method == "AmendSession") {
      v1::AmendSessionRequest req;
      req.set_name("a");
      req.mutable_scale()->set_factor(0.5);
      v1::AmendSessionResponse resp;
      return stub.AmendSession(With(token).get(), req, &resp);
    }
    if (method == "GetHistory") {
      v1::GetHistoryRequest req;
      req.set_name("a");
      v1::GetHistoryResponse resp;
      return stub.GetHistory(With(token).get(), req, &resp);
    }
    ADD_FAILURE() << "no call for " << method;
    return grpc::Status(grpc::StatusCode::INTERNAL, "test");
  }

  Authorizer auth_;
  ServerHarness server_;
  int created_ = 0;
};

TEST_F(AuthServerTest, NoTokenIsUnauthenticatedOnEveryMethod) {
  for (const std::string& m : kAllMethods) {
    grpc::Status s = Invoke(m, "");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << m << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("Bearer")) << m;
  }
}

TEST_F(AuthServerTest, WrongTokenIsUnauthenticatedOnEveryMethod) {
  for (const std::string& m : kAllMethods) {
    grpc::Status s = Invoke(m, "not-a-known-token-at-all");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << m << ": " << s.error_message();
  }
  // Another scheme is no bearer token either.
  auto ctx = Ctx();
  ctx->AddMetadata("authorization", absl::StrCat("Basic ", kAdmin));
  v1::GetSessionRequest req;
  req.set_name("a");
  v1::Session resp;
  EXPECT_EQ(server_.stub().GetSession(ctx.get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthServerTest, ReaderReadsButMayNotMutate) {
  for (const std::string& m : kReads) {
    grpc::Status s = Invoke(m, kReader);
    EXPECT_TRUE(s.ok()) << m << ": " << s.error_message();
  }
  for (const char* m : {"Step", "CreateSession", "DeleteSession", "ImportState", "AmendSession"}) {
    grpc::Status s = Invoke(m, kReader);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << m;
    EXPECT_THAT(s.error_message(), HasSubstr("role reader may not call")) << m;
  }
  v1::Session a;
  auto ctx = With(kAdmin);
  v1::GetSessionRequest req;
  req.set_name("a");
  ASSERT_TRUE(server_.stub().GetSession(ctx.get(), req, &a).ok());
  EXPECT_EQ(a.last_epoch(), 0);  // the refused step changed nothing
}

TEST_F(AuthServerTest, StepperStepsButMayNotCreateDeleteOrImport) {
  for (const std::string& m : kReads) EXPECT_TRUE(Invoke(m, kStepper).ok()) << m;
  EXPECT_TRUE(Invoke("Step", kStepper).ok());
  for (const char* m : {"CreateSession", "DeleteSession", "ImportState", "AmendSession"}) {
    EXPECT_EQ(Invoke(m, kStepper).error_code(), grpc::StatusCode::PERMISSION_DENIED) << m;
  }
}

TEST_F(AuthServerTest, AdminMayCallEverything) {
  for (const std::string& m : kAllMethods) {
    grpc::Status s = Invoke(m, kAdmin);
    EXPECT_TRUE(s.ok()) << m << ": " << s.error_message();
  }
}

TEST_F(AuthServerTest, HealthCheckingStaysOpen) {
  grpc::Status s = HealthCheck(server_.channel());
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
}

TEST_F(AuthServerTest, ReplacedTokensApplyToTheNextCall) {
  auto fresh = ParseTokens("rotated-0123456789abcdef reader\n", "rotated");
  ASSERT_TRUE(fresh.ok());
  auth_.Replace(*fresh);
  EXPECT_EQ(Invoke("GetSession", kAdmin).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Invoke("GetSession", "rotated-0123456789abcdef").ok());
}

}  // namespace
}  // namespace lrsched::test_support
