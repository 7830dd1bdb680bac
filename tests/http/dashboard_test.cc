// The dashboard's static files as served by MountDashboard on an in-process cpp-httplib server:
// the embedded copies equal server/http/static/ (the build step embedded every byte), each with
// its Content-Type, no-cache + ETag revalidation (304), nosniff, the page's CSP; unknown files
// are 404 with the JSON error body.
#include "server/http/dashboard.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "server/http/dashboard_assets.h"

namespace lrsched::http {
namespace {

std::string SourceFile(const std::string& name) {
  std::ifstream in(std::string(LRSCHED_DASHBOARD_STATIC) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MountDashboard(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // The socket listens once bound (connections queue); wait (bounded) for the accept loop
    // too, so that TearDown's stop() cannot race its start.
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(server_.is_running());
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    return client.Get(path.c_str(), headers);
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(DashboardAssetsTest, EmbeddedCopiesEqualTheSourceFiles) {
  ASSERT_EQ(kDashboardAssetCount, 7u);  // dashboard.cmake's LRSCHED_DASHBOARD_FILES
  for (std::size_t i = 0; i < kDashboardAssetCount; ++i) {
    const DashboardAsset& a = kDashboardAssets[i];
    std::string embedded(reinterpret_cast<const char*>(a.data), a.size);
    EXPECT_FALSE(embedded.empty()) << a.path;
    EXPECT_EQ(embedded, SourceFile(std::string(a.path).substr(1))) << a.path;
    EXPECT_EQ(a.data[a.size], 0) << a.path;
  }
}

TEST_F(DashboardTest, ServesThePageAtRootWithItsHeaders) {
  auto res = Get("/");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, SourceFile("index.html"));
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");
  EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(res->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
}

TEST_F(DashboardTest, ServesScriptAndStylesheetWithTheirTypes) {
  for (const auto& [name, type] :
       {std::pair<std::string, std::string>{"app.js", "text/javascript; charset=utf-8"},
        {"session.js", "text/javascript; charset=utf-8"},
        {"style.css", "text/css; charset=utf-8"}}) {
    auto res = Get("/static/" + name);
    ASSERT_TRUE(res) << name;
    EXPECT_EQ(res->status, 200) << name;
    EXPECT_EQ(res->body, SourceFile(name)) << name;
    EXPECT_EQ(res->get_header_value("Content-Type"), type) << name;
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache") << name;
  }
}

TEST_F(DashboardTest, ARevalidationWithTheETagIsNotModified) {
  auto first = Get("/static/app.js");
  ASSERT_TRUE(first);
  std::string etag = first->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  EXPECT_NE(Get("/static/style.css")->get_header_value("ETag"), etag);
  auto again = Get("/static/app.js", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  auto stale = Get("/static/app.js", {{"If-None-Match", "\"0-0\""}});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200);
  EXPECT_EQ(stale->body, first->body);
}

TEST_F(DashboardTest, AnUnknownFileIsNotFoundWithTheJsonErrorBody) {
  for (const char* path : {"/static/missing.js", "/static/../index.html", "/static/"}) {
    auto res = Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
  }
  auto res = Get("/static/missing.js");
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_NE(res->body.find(R"("status": "NOT_FOUND")"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("/static/missing.js"), std::string::npos) << res->body;
}

}  // namespace
}  // namespace lrsched::http
