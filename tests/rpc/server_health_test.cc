// Copyright lrsched authors.
//
// The standard health service follows the store's writes (server/rpc/write_health.h): NOT_SERVING
// while mutations fail UNAVAILABLE from the store (a full disk: SqliteStore's max_db_bytes;
// injected failures: MemoryStore), SERVING again once a mutation writes; reads keep working
// throughout, and client mistakes change nothing.
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/rpc/server.h"
#include "server/store/sqlite/sqlite_store.h"
#include "tests/rpc/server_harness.h"

namespace lrsched::test_support {
namespace {

using HealthResponse = grpc::health::v1::HealthCheckResponse;

// The whole server's status ("" service), or UNKNOWN when the check itself fails.
HealthResponse::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel,
                                     const std::string& service = "") {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  HealthResponse resp;
  grpc::Status s = stub->Check(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return s.ok() ? resp.status() : HealthResponse::UNKNOWN;
}

TEST(WriteHealthTest, FailedWritesAreNotServingUntilOneSucceeds) {
  ServerHarness h(StoreKind::kMemory);
  ASSERT_TRUE(Create(h.stub(), "w", kCosineSpec).ok());
  EXPECT_EQ(Health(h.channel()), HealthResponse::SERVING);

  h.memory()->FailNextCommits(2, absl::UnavailableError("disk full"));
  EXPECT_EQ(Step(h.stub(), "w").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Health(h.channel()), HealthResponse::NOT_SERVING);
  EXPECT_EQ(Health(h.channel(), "lrsched.v1.LrScheduler"), HealthResponse::NOT_SERVING);
  EXPECT_EQ(Create(h.stub(), "w2", kCosineSpec).error_code(), grpc::StatusCode::UNAVAILABLE);
  // Reads keep working, and neither they nor the caller's mistakes say the store writes again.
  v1::Session got;
  ASSERT_TRUE(Get(h.stub(), "w", &got).ok());
  EXPECT_EQ(got.last_epoch(), 0);
  EXPECT_EQ(Step(h.stub(), "missing").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Create(h.stub(), "bad name", kCosineSpec).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::StepRequest stale;  // answered without writing: last_epoch is not 5
  stale.set_name("w");
  stale.set_if_epoch(5);
  v1::StepResponse r;
  ASSERT_TRUE(StepOnce(h.stub(), stale, &r).ok());
  EXPECT_FALSE(r.advanced());
  EXPECT_EQ(Health(h.channel()), HealthResponse::NOT_SERVING);

  // The store writes again: the first mutation that writes says so.
  ASSERT_TRUE(Step(h.stub(), "w", &r).ok());
  EXPECT_TRUE(r.advanced());
  EXPECT_EQ(Health(h.channel()), HealthResponse::SERVING);
  EXPECT_EQ(Health(h.channel(), "lrsched.v1.LrScheduler"), HealthResponse::SERVING);

  // Every mutation counts, not only Step.
  h.memory()->FailNextCommits(1, absl::UnavailableError("disk full"));
  EXPECT_EQ(Delete(h.stub(), "w").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Health(h.channel()), HealthResponse::NOT_SERVING);
  ASSERT_TRUE(Create(h.stub(), "w3", kCosineSpec).ok());
  EXPECT_EQ(Health(h.channel()), HealthResponse::SERVING);
}

// A real full disk: SQLite refuses to grow the database past max_db_bytes (SQLITE_FULL).
TEST(WriteHealthTest, FullSqliteDisk) {
  const char* base = getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/lrsched_health_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  {
    SqliteStore::Options o;
    o.dir = dir;
    o.synchronous = SqliteStore::Options::Synchronous::kNormal;
    o.max_db_bytes = 256 << 10;
    // SQLite's own refusal, on the reply path: without the journal, whose appends would go on
    // until its backlog limit (its full disk: tests/store/sqlite/journal_store_test.cc).
    o.journal = false;
    auto store = SqliteStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    auto server = LrschedServer::Start(config, store->get());
    ASSERT_TRUE(server.ok()) << server.status();
    auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
    auto stub = v1::LrScheduler::NewStub(channel);
    ASSERT_TRUE(Create(*stub, "keep", kCosineSpec).ok());
    EXPECT_EQ(Health(channel), HealthResponse::SERVING);

    // ~4 KiB of labels a session: the limit is reached within a hundred or so.
    std::map<std::string, std::string> labels;
    for (int k = 0; k < 16; ++k) labels[absl::StrCat("k", k)] = std::string(250, 'a' + k);
    grpc::Status full;
    int created = 0;
    for (int i = 0; i < 1000 && full.ok(); ++i) {
      full = Create(*stub, absl::StrCat("fill/", i), kCosineSpec, nullptr, labels);
      if (full.ok()) ++created;
    }
    ASSERT_EQ(full.error_code(), grpc::StatusCode::UNAVAILABLE) << full.error_message();
    ASSERT_GT(created, 0);
    EXPECT_EQ(Health(channel), HealthResponse::NOT_SERVING);
    v1::Session got;
    EXPECT_TRUE(Get(*stub, "keep", &got).ok());
    EXPECT_TRUE(Get(*stub, "fill/0").ok());

    // Freeing space is a write that fits (SQLite reuses the pages).
    ASSERT_TRUE(Delete(*stub, "fill/0").ok());
    EXPECT_EQ(Health(channel), HealthResponse::SERVING);
    (*server)->Shutdown(absl::Seconds(1));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace lrsched::test_support
