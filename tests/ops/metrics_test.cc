// Copyright lrsched authors.
//
// Prometheus metrics (server/ops/metrics.h): an in-process server with --metrics_listen on a free
// port, some calls, then GET /metrics over HTTP: counters by method and code, latency
// histograms, the sessions gauge and the store's group-commit histograms. Also the access log
// (server/ops/access_log.h): one line per mutation, with its outcome.
#include "server/ops/metrics.h"

#include <httplib.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using ::testing::HasSubstr;

// "name{labels}" -> value, for every sample line.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    double v = 0;
    if (space == absl::string_view::npos) continue;
    absl::string_view value = line.substr(space + 1);
    if (value == "+Inf") {
      v = 1e300;
    } else if (!absl::SimpleAtod(value, &v)) {
      ADD_FAILURE() << "bad sample line: " << line;
      continue;
    }
    out[std::string(line.substr(0, space))] = v;
  }
  return out;
}

ServerConfig WithMetrics() {
  ServerConfig c;
  c.metrics_listen = "127.0.0.1:0";
  return c;
}

TEST(MetricsTest, ScrapeAfterCallsShowsCountersHistogramsAndGauges) {
  ServerHarness h(StoreKind::kSqlite, WithMetrics());
  ASSERT_NE(h.server()->metrics(), nullptr);
  ASSERT_GT(h.server()->metrics_port(), 0);
  Metrics* metrics = h.server()->metrics();
  static_cast<SqliteStore*>(h.store())->SetBatchObserver(
      [metrics](int64_t n, absl::Duration d) { metrics->ObserveStoreBatch(n, d); });

  ASSERT_TRUE(Create(h.stub(), "m/a", kCosineSpec).ok());
  ASSERT_TRUE(Create(h.stub(), "m/b", kStepLRSpec).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Step(h.stub(), "m/a").ok());
  EXPECT_EQ(Get(h.stub(), "missing").error_code(), grpc::StatusCode::NOT_FOUND);

  httplib::Client http("127.0.0.1", h.server()->metrics_port());
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  const std::string& body = res->body;
  EXPECT_THAT(body, HasSubstr("# TYPE lrsched_rpc_total counter"));
  EXPECT_THAT(body, HasSubstr("# TYPE lrsched_rpc_duration_seconds histogram"));
  auto s = Samples(body);

  const std::string step = "method=\"lrsched.v1.LrScheduler/Step\"";
  EXPECT_EQ(s[absl::StrCat("lrsched_rpc_total{", step, ",code=\"OK\"}")], 5);
  EXPECT_EQ(s["lrsched_rpc_total{method=\"lrsched.v1.LrScheduler/CreateSession\",code=\"OK\"}"], 2);
  EXPECT_EQ(s["lrsched_rpc_total{method=\"lrsched.v1.LrScheduler/GetSession\",code=\"NOT_FOUND\"}"],
            1);

  // The Step histogram: cumulative buckets ending at _count, a positive, plausible _sum.
  EXPECT_EQ(s[absl::StrCat("lrsched_rpc_duration_seconds_count{", step, "}")], 5);
  EXPECT_EQ(s[absl::StrCat("lrsched_rpc_duration_seconds_bucket{", step, ",le=\"+Inf\"}")], 5);
  double sum = s[absl::StrCat("lrsched_rpc_duration_seconds_sum{", step, "}")];
  EXPECT_GT(sum, 0);
  EXPECT_LT(sum, 5 * 10.0);
  int buckets = 0;
  for (const auto& [key, v] : s) {
    if (key.rfind(absl::StrCat("lrsched_rpc_duration_seconds_bucket{", step), 0) == 0) ++buckets;
  }
  EXPECT_EQ(buckets, 15);  // 14 bounds and +Inf
  // Monotonic in le order (the map orders keys as text, so walk the known bounds).
  double prev = 0;
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}) {
    double v = s[absl::StrCat("lrsched_rpc_duration_seconds_bucket{", step, ",le=\"", le, "\"}")];
    EXPECT_GE(v, prev) << le;
    prev = v;
  }

  EXPECT_EQ(s["lrsched_sessions"], 2);
  // Seven mutations (2 creates, 5 steps), in one or more group-commit transactions.
  EXPECT_EQ(s["lrsched_store_batch_size_sum"], 7);
  EXPECT_GE(s["lrsched_store_batch_size_count"], 1);
  EXPECT_LE(s["lrsched_store_batch_size_count"], 7);
  EXPECT_EQ(s["lrsched_store_commit_duration_seconds_count"], s["lrsched_store_batch_size_count"]);
  EXPECT_GT(s["lrsched_store_commit_duration_seconds_sum"], 0);

  auto other = http.Get("/other");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  static_cast<SqliteStore*>(h.store())->SetBatchObserver(nullptr);
}

// Calls the service does not report itself go through the interceptor: a Watch stream, a
// health check.
TEST(MetricsTest, WatchStreamsAndHealthChecksAreCounted) {
  ServerHarness h(StoreKind::kMemory, WithMetrics());
  {
    v1::WatchRequest req;
    req.set_name("missing");
    auto ctx = Ctx();
    auto reader = h.stub().Watch(ctx.get(), req);
    v1::Session s;
    EXPECT_FALSE(reader->Read(&s));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_TRUE(HealthCheck(h.channel()).ok());
  auto s = Samples(h.server()->metrics()->Render());
  EXPECT_EQ(s["lrsched_rpc_total{method=\"lrsched.v1.LrScheduler/Watch\",code=\"NOT_FOUND\"}"], 1);
  EXPECT_EQ(s["lrsched_rpc_total{method=\"grpc.health.v1.Health/Check\",code=\"OK\"}"], 1);
  EXPECT_EQ(s["lrsched_rpc_duration_seconds_count{method=\"grpc.health.v1.Health/Check\"}"], 1);
}

// Every mutation writes one access line, whatever its outcome; reads write none.
TEST(AccessLogTest, OneLinePerMutationWithItsOutcome) {
  for (StoreKind kind : {StoreKind::kMemory, StoreKind::kSqlite}) {
    SCOPED_TRACE(kind == StoreKind::kMemory ? "memory" : "sqlite");
    ServerHarness h(kind);  // metrics off: the access log does not depend on them
    std::vector<std::string> lines = CaptureAccessLog([&] {
      ASSERT_TRUE(Create(h.stub(), "a/x", kCosineSpec).ok());
      v1::StepResponse r;
      ASSERT_TRUE(Step(h.stub(), "a/x").ok());
      v1::StepRequest stale;
      stale.set_name("a/x");
      stale.set_if_epoch(0);
      ASSERT_TRUE(StepOnce(h.stub(), stale, &r).ok());
      EXPECT_FALSE(r.advanced());
      EXPECT_EQ(Step(h.stub(), "a/missing").error_code(), grpc::StatusCode::NOT_FOUND);
      ASSERT_TRUE(Get(h.stub(), "a/x").ok());
      v1::ExportStateResponse ex;
      ASSERT_TRUE(Export(h.stub(), "a/x", &ex).ok());
      v1::ImportStateRequest imp;
      imp.set_name("a/y");
      imp.set_state_json(ex.state_json());
      v1::Session copy;
      ASSERT_TRUE(h.stub().ImportState(Ctx().get(), imp, &copy).ok());
      ASSERT_TRUE(Delete(h.stub(), "a/x").ok());
      EXPECT_EQ(Create(h.stub(), "bad name", kCosineSpec).error_code(),
                grpc::StatusCode::INVALID_ARGUMENT);
    });
    EXPECT_THAT(lines, ::testing::ElementsAre(
                           "event=access method=CreateSession session=a/x epoch=0 code=OK",
                           "event=access method=Step session=a/x epoch=1 advanced=true code=OK",
                           "event=access method=Step session=a/x epoch=1 advanced=false code=OK",
                           "event=access method=Step session=a/missing code=NOT_FOUND",
                           "event=access method=ImportState session=a/y epoch=1 code=OK",
                           "event=access method=DeleteSession session=a/x code=OK",
                           "event=access method=CreateSession session=\"bad name\" "
                           "code=INVALID_ARGUMENT"));
  }
}

TEST(MetricsTest, OffByDefault) {
  ServerHarness h(StoreKind::kMemory);
  EXPECT_EQ(h.server()->metrics(), nullptr);
  EXPECT_EQ(h.server()->metrics_port(), 0);
}

TEST(MetricsTest, BadListenAddressIsRefused) {
  Metrics m;
  auto bad = MetricsHttpServer::Start("no-port-here", &m);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  auto first = MetricsHttpServer::Start("127.0.0.1:0", &m);
  ASSERT_TRUE(first.ok()) << first.status();
  auto taken = MetricsHttpServer::Start(absl::StrCat("127.0.0.1:", (*first)->port()), &m);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
}

TEST(MetricsTest, RenderEscapesLabelsAndReadsGauges) {
  Metrics m;
  m.ObserveRpc("odd\"method\\\n", 14, absl::Milliseconds(3));
  double value = 1.5;
  m.AddGauge("lrsched_test_gauge", "A test gauge.", "gauge", [&value] { return value; });
  std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("lrsched_rpc_total{method=\"odd\\\"method\\\\\\n\","
                              "code=\"UNAVAILABLE\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE lrsched_test_gauge gauge\nlrsched_test_gauge 1.5\n"));
  // A code outside gRPC's range counts as UNKNOWN, listed after the known ones by name.
  m.ObserveRpc("m", 99, absl::Milliseconds(1));
  m.ObserveRpc("m", 0, absl::Milliseconds(1));
  text = m.Render();
  EXPECT_THAT(text, HasSubstr("lrsched_rpc_total{method=\"m\",code=\"OK\"} 1\n"
                              "lrsched_rpc_total{method=\"m\",code=\"UNKNOWN\"} 1\n"));
  value = 2;
  EXPECT_THAT(m.Render(), HasSubstr("lrsched_test_gauge 2\n"));
}

}  // namespace
}  // namespace lrsched::test_support
