// Copyright lrsched authors.
//
// Damaged stored records (issue #14): Registry::Load refuses one by name or sets it aside, a
// name set aside answers DATA_LOSS to every call until it is deleted, a server that refuses to
// start does not crash on the way out, and records of format 1 are rewritten at start-up.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/registry/record_frame.h"
#include "server/registry/registry.h"
#include "server/rpc/server.h"
#include "server/store/testing/memory_store.h"

namespace lrsched {
namespace {

using nlohmann::json;

const json& Spec() {
  static const json* spec = new json(json::parse(
      R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
          "scheduler": {"type": "CosineAnnealingLR", "T_max": 40, "eta_min": 0.001}})"));
  return *spec;
}

// Three sessions, "a" stepped 5 times, written through a registry into `store`.
void Populate(MemoryStore& store) {
  Registry r(&store, 100);
  ASSERT_TRUE(r.Load().ok());
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(r.Create(name, Spec(), {}).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r.Step("a", {}, std::nullopt).ok());
}

void FlipOneBit(MemoryStore& store, const std::string& name) {
  std::string record = store.Get(name);
  ASSERT_FALSE(record.empty());
  record[record.size() / 2] ^= 0x04;
  store.Put(name, record);
}

void ExpectDataLoss(const absl::Status& s, const std::string& what) {
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << what << ": " << s;
  EXPECT_NE(s.message().find("\"b\""), std::string::npos) << what << ": " << s;
}

TEST(DamagedRecordsTest, LoadRefusesADamagedRecordByName) {
  MemoryStore store;
  Populate(store);
  FlipOneBit(store, "b");
  Registry r(&store, 100);
  absl::Status s = r.Load();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("session \"b\" (store revision 2)"), std::string::npos) << s;
  EXPECT_NE(s.message().find("checksum mismatch"), std::string::npos) << s;
}

TEST(DamagedRecordsTest, QuarantineServesTheOthersAndAnswersDataLossForIt) {
  MemoryStore store;
  Populate(store);
  FlipOneBit(store, "b");
  const std::string damaged = store.Get("b");
  Registry r(&store, 100);
  ASSERT_TRUE(r.Load(LoadOptions{DamagedRecords::kQuarantine}).ok());
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.damaged_count(), 1u);
  auto a = r.Get("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->last_epoch, 5);

  ExpectDataLoss(r.Get("b").status(), "Get");
  ExpectDataLoss(r.Step("b", {}, std::nullopt).status(), "Step");
  ExpectDataLoss(r.LookAhead("b", 3, 0, [] { return false; }).status(), "LookAhead");
  ExpectDataLoss(r.Export("b").status(), "Export");
  ExpectDataLoss(r.Create("b", Spec(), {}).status(), "Create");
  auto fresh = Schedule::Create(Spec());
  ASSERT_TRUE(fresh.ok());
  ExpectDataLoss(r.Import("b", *std::move(fresh), std::nullopt, true).status(), "Import");
  EXPECT_EQ(store.Get("b"), damaged) << "the record set aside must stay as it was";

  // Delete discards it; the name is free again.
  ASSERT_TRUE(r.Delete("b", std::nullopt).ok());
  EXPECT_EQ(r.damaged_count(), 0u);
  EXPECT_EQ(store.Get("b"), "");
  EXPECT_EQ(r.Get("b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(r.Create("b", Spec(), {}).ok());
}

TEST(DamagedRecordsTest, ForeignBytesAndMisnamedRecordsAreDamagedToo) {
  MemoryStore store;
  Populate(store);
  store.Put("evil", "garbage");
  store.Put("c", store.Get("a"));  // a good record under another name
  Registry r(&store, 100);
  ASSERT_TRUE(r.Load(LoadOptions{DamagedRecords::kQuarantine}).ok());
  EXPECT_EQ(r.damaged_count(), 2u);
  EXPECT_EQ(r.Get("evil").status().code(), absl::StatusCode::kDataLoss);
  absl::Status c = r.Get("c").status();
  EXPECT_EQ(c.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(c.message().find("holds session \"a\""), std::string::npos) << c;
}

// A store whose revision of a record is not positive (a SQLite row's revision edited to text
// reads as 0): set aside, not loaded into a session whose every later commit would fail.
class ZeroRevisionStore final : public Store {
 public:
  explicit ZeroRevisionStore(MemoryStore* inner) : inner_(inner) {}
  absl::StatusOr<int64_t> Commit(const Mutation& m) override { return inner_->Commit(m); }
  absl::Status LoadAll(
      const std::function<absl::Status(std::string_view, std::string_view, int64_t)>& fn) override {
    return inner_->LoadAll([&](std::string_view name, std::string_view value, int64_t rev) {
      return fn(name, value, name == "b" ? 0 : rev);
    });
  }
  void Close() override {}
  Stats stats() const override { return {}; }

 private:
  MemoryStore* inner_;
};

TEST(DamagedRecordsTest, ANonPositiveStoreRevisionIsDamage) {
  MemoryStore store;
  Populate(store);
  ZeroRevisionStore zero(&store);
  Registry r(&zero, 100);
  absl::Status s = r.Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("store revision 0 is not positive"), std::string::npos) << s;
}

TEST(DamagedRecordsTest, FormatOneRecordsAreRewrittenAtStartUp) {
  MemoryStore store;
  Populate(store);
  const std::string framed = store.Get("a");
  store.Put("a", framed.substr(kRecordHeaderBytes));  // as a build before the frame wrote it
  {
    Registry r(&store, 100);
    ASSERT_TRUE(r.Load().ok());
    auto a = r.Get("a");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->last_epoch, 5);
    EXPECT_EQ(a->meta.revision, 6);  // the session's own revision: unchanged
    EXPECT_EQ(store.Get("a"), framed);
    // The store revision moved with the rewrite: the next step commits on it.
    ASSERT_TRUE(r.Step("a", {}, std::nullopt).ok());
  }
  Registry again(&store, 100);
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.Get("a")->last_epoch, 6);
}

TEST(DamagedRecordsTest, ServerRefusesToStartWithoutCrashingAndSaysHowToGoOn) {
  MemoryStore store;
  Populate(store);
  FlipOneBit(store, "b");
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.store_location = "/srv/lrsched/lrsched.db";
  auto server = LrschedServer::Start(config, &store);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(server.status().message().find("/srv/lrsched/lrsched.db: session \"b\""),
            std::string::npos)
      << server.status();
  EXPECT_NE(server.status().message().find("--damaged_records=quarantine"), std::string::npos)
      << server.status();

  config.damaged_records = DamagedRecords::kQuarantine;
  store.Reopen();
  auto serving = LrschedServer::Start(config, &store);
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_EQ((*serving)->registry().damaged_count(), 1u);
  (*serving)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace lrsched
