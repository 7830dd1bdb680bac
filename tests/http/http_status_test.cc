// Copyright lrsched authors.
#include "server/http/http_status.h"

#include "gtest/gtest.h"

namespace lrsched::http {
namespace {

TEST(HttpStatusTest, GrpcCodesMapAsGrpcGatewayDoes) {
  const int want[17] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                        400, 409, 400, 501, 500, 503, 500, 401};
  for (int code = 0; code <= 16; ++code) EXPECT_EQ(HttpStatusOf(code), want[code]) << code;
  EXPECT_EQ(HttpStatusOf(-1), 500);
  EXPECT_EQ(HttpStatusOf(99), 500);
}

TEST(HttpStatusTest, GatewayRefusalsHaveACode) {
  EXPECT_EQ(CodeOfHttpStatus(404), 5);
  EXPECT_EQ(CodeOfHttpStatus(405), 12);
  EXPECT_EQ(CodeOfHttpStatus(413), 8);
  EXPECT_EQ(CodeOfHttpStatus(400), 3);
  EXPECT_EQ(CodeOfHttpStatus(500), 13);
  // Each maps back to its own HTTP status (405 and 413 excepted: no gRPC code has them).
  for (int s : {400, 401, 403, 404, 409, 429, 499, 501, 503, 504}) {
    EXPECT_EQ(HttpStatusOf(CodeOfHttpStatus(s)), s) << s;
  }
}

TEST(HttpStatusTest, ErrorBodyIsJsonWithTheCodeName) {
  EXPECT_EQ(ErrorBody(5, "session \"a\\b\" not found\n"),
            R"({"code":5,"status":"NOT_FOUND","message":"session \"a\\b\" not found\n"})");
  EXPECT_EQ(ErrorBody(3, std::string("x\x01y", 3)),
            R"({"code":3,"status":"INVALID_ARGUMENT","message":"x\u0001y"})");
}

}  // namespace
}  // namespace lrsched::http
