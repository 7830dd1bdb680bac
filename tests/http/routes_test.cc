// Copyright lrsched authors.
#include "server/http/routes.h"

#include "gtest/gtest.h"

namespace lrsched::http {
namespace {

void ExpectRoute(const char* method, const char* path, Rpc rpc, const char* name) {
  RouteMatch m = MatchRoute(method, path);
  EXPECT_EQ(m.status, 200) << method << " " << path << ": " << m.error;
  EXPECT_EQ(RpcName(m.rpc), std::string(RpcName(rpc))) << method << " " << path;
  EXPECT_EQ(m.name, name) << method << " " << path;
}

TEST(RoutesTest, EveryRouteOfTheContract) {
  ExpectRoute("POST", "/v1/sessions", Rpc::kCreateSession, "");
  ExpectRoute("GET", "/v1/sessions", Rpc::kListSessions, "");
  ExpectRoute("GET", "/v1/sessions/a", Rpc::kGetSession, "a");
  ExpectRoute("HEAD", "/v1/sessions/a", Rpc::kGetSession, "a");
  ExpectRoute("DELETE", "/v1/sessions/a", Rpc::kDeleteSession, "a");
  ExpectRoute("POST", "/v1/sessions/a:step", Rpc::kStep, "a");
  ExpectRoute("GET", "/v1/sessions/a:lr", Rpc::kGetLR, "a");
  ExpectRoute("GET", "/v1/sessions/a:watch", Rpc::kWatch, "a");
  ExpectRoute("POST", "/v1:simulate", Rpc::kSimulate, "");
  ExpectRoute("GET", "/v1/sessions/a:export", Rpc::kExportState, "a");
  ExpectRoute("POST", "/v1/sessions/a:import", Rpc::kImportState, "a");
  ExpectRoute("POST", "/v1/sessions/a:amend", Rpc::kAmendSession, "a");
  ExpectRoute("GET", "/v1/sessions/a:history", Rpc::kGetHistory, "a");
}

TEST(RoutesTest, NamesMayHoldSlashesAndDots) {
  ExpectRoute("GET", "/v1/sessions/runs/exp-1/rank.0:lr", Rpc::kGetLR, "runs/exp-1/rank.0");
  ExpectRoute("GET", "/v1/sessions/runs/a", Rpc::kGetSession, "runs/a");
}

TEST(RoutesTest, UnknownPathsAre404) {
  for (const char* path : {"/", "/v1", "/v2/sessions", "/v1/sessionsx", "/v1/sessions/:lr",
                           "/v1/sessions/a:bogus", "/v1/sessions/a:"}) {
    RouteMatch m = MatchRoute("GET", path);
    EXPECT_EQ(m.status, 404) << path;
    EXPECT_FALSE(m.error.empty()) << path;
  }
  EXPECT_NE(MatchRoute("GET", "/v1/sessions/a:bogus").error.find(":bogus"), std::string::npos);
}

TEST(RoutesTest, WrongMethodsAre405WithAllow) {
  RouteMatch m = MatchRoute("PUT", "/v1/sessions/a");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "GET, DELETE");
  EXPECT_NE(m.error.find("PUT"), std::string::npos);
  EXPECT_EQ(MatchRoute("GET", "/v1/sessions/a:step").allow, "POST");
  EXPECT_EQ(MatchRoute("POST", "/v1/sessions/a:lr").allow, "GET");
  EXPECT_EQ(MatchRoute("DELETE", "/v1/sessions").allow, "GET, POST");
  EXPECT_EQ(MatchRoute("GET", "/v1:simulate").status, 405);
}

}  // namespace
}  // namespace lrsched::http
