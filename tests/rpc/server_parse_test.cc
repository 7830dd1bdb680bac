// Copyright lrsched authors.
//
// Request bodies that do not parse as the method's request message (server/rpc/service_parse.cc):
// every method of LrScheduler, Watch included, answers INVALID_ARGUMENT "could not parse
// request" naming the method (grpc++ alone answers UNIMPLEMENTED with no message), counts the
// call in lrsched_rpc_total, writes the access-log line of a mutation, and authorizes first.
#include <future>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "server/ops/auth.h"
#include "server/ops/metrics.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kMethods = {
    "CreateSession", "GetSession", "ListSessions", "DeleteSession", "Step",         "GetLR",
    "Watch",         "Simulate",   "ExportState",  "ImportState",   "AmendSession", "GetHistory"};

// Bodies no request message parses from: a length-delimited field 1 running past the end; a
// truncated tag varint; field 1 (a string in every request) holding invalid UTF-8, which
// proto3 refuses.
const std::vector<std::string> kGarbage = {std::string{'\x0a', '\x05', 'a', 'b'},
                                           std::string{'\xff', '\xff', '\xff'},
                                           std::string{'\x0a', '\x01', '\xff'}};

// One call of /lrsched.v1.LrScheduler/`method` whose body is `body`, with an optional token.
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& body, const std::string& token = "") {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(body);
  grpc::ByteBuffer req(&slice, 1), resp;
  auto ctx = Ctx();
  if (!token.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  std::promise<grpc::Status> done;
  stub.UnaryCall(ctx.get(), absl::StrCat("/lrsched.v1.LrScheduler/", method), grpc::StubOptions(),
                 &req, &resp, [&done](grpc::Status s) { done.set_value(s); });
  return done.get_future().get();
}

TEST(UnparsableRequestTest, EveryMethodSaysInvalidArgumentNamingIt) {
  ServerConfig config;
  config.metrics_listen = "127.0.0.1:0";
  ServerHarness h(StoreKind::kMemory, config);
  ASSERT_TRUE(Create(h.stub(), "ok", kCosineSpec).ok());
  for (const std::string& method : kMethods) {
    for (const std::string& body : kGarbage) {
      SCOPED_TRACE(absl::StrCat(method, " ", absl::CEscape(body)));
      grpc::Status s = RawCall(h.channel(), method, body);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
      EXPECT_THAT(s.error_message(), HasSubstr("could not parse request"));
      EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat(" ", method, " call ")));
    }
  }
  // The server is unharmed, and parsed requests still work.
  v1::StepResponse r;
  ASSERT_TRUE(Step(h.stub(), "ok", &r).ok());
  EXPECT_TRUE(r.advanced());
  EXPECT_TRUE(HealthCheck(h.channel()).ok());

  const std::string text = h.server()->metrics()->Render();
  for (const std::string& method : kMethods) {
    EXPECT_THAT(text,
                HasSubstr(absl::StrCat("lrsched_rpc_total{method=\"lrsched.v1.LrScheduler/", method,
                                       "\",code=\"INVALID_ARGUMENT\"} ", kGarbage.size(), "\n")));
  }
  EXPECT_THAT(text, ::testing::Not(HasSubstr("UNIMPLEMENTED")));
}

TEST(UnparsableRequestTest, MutationsAreInTheAccessLog) {
  ServerHarness h(StoreKind::kMemory);
  std::vector<std::string> lines = CaptureAccessLog([&] {
    for (const char* method : {"Step", "CreateSession", "GetLR"}) {
      EXPECT_EQ(RawCall(h.channel(), method, kGarbage[0]).error_code(),
                grpc::StatusCode::INVALID_ARGUMENT);
    }
  });
  EXPECT_THAT(lines, ::testing::ElementsAre(
                         "event=access method=Step session=\"\" code=INVALID_ARGUMENT",
                         "event=access method=CreateSession session=\"\" code=INVALID_ARGUMENT"));
}

TEST(UnparsableRequestTest, AuthorizationComesFirst) {
  constexpr char kReader[] = "reader-0123456789abcdef";
  auto tokens = ParseTokens(absl::StrCat(kReader, " reader\n"), "test");
  ASSERT_TRUE(tokens.ok());
  Authorizer auth(*tokens);
  ServerConfig config;
  config.authorizer = &auth;
  ServerHarness h(StoreKind::kMemory, config);
  for (const std::string& method : kMethods) {
    SCOPED_TRACE(method);
    EXPECT_EQ(RawCall(h.channel(), method, kGarbage[0]).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    grpc::Status s = RawCall(h.channel(), method, kGarbage[0], kReader);
    const bool reader_may = RequiredRole(method) == Role::kReader;
    EXPECT_EQ(s.error_code(),
              reader_may ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::PERMISSION_DENIED)
        << s.error_message();
  }
}

}  // namespace
}  // namespace lrsched::test_support
