// Copyright lrsched authors.
//
// SqliteStore across schema versions and on a full disk: a file written by schema version 1
// (before the commit sequence number) is migrated to version 2 on the first open, records
// intact; a start-up that fails for want of space says so (server/store/sqlite/disk_space.h).
#include <sqlite3.h>

#include <cerrno>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ops/log.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/disk_space.h"
#include "server/store/sqlite/highwater.h"
#include "server/store/sqlite/sqlite_store.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs `sql` on `path` with a plain connection and returns the first column of its last row.
std::string Sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string last;
  char* err = nullptr;
  auto cb = [](void* out, int, char** cols, char**) {
    *static_cast<std::string*>(out) = cols[0] ? cols[0] : "NULL";
    return 0;
  };
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), cb, &last, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
  return last;
}

// A database as schema version 1 (lrsched before the COMMITTED check) left it after a clean
// shutdown: the marker, the one table in WAL mode, `n` sessions, no COMMITTED file.
void WriteVersion1(const std::string& path, int n) {
  std::string sql =
      "PRAGMA journal_mode=WAL; PRAGMA application_id=1280463683; PRAGMA user_version=1; "
      "BEGIN; CREATE TABLE sessions (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, "
      "revision INTEGER NOT NULL); ";
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&sql, "INSERT INTO sessions VALUES ('session-", i, "', x'",
                    std::string(400, 'a'), "', ", i + 1, "); ");
  }
  sql += "COMMIT";
  Sql(path, sql);
  ASSERT_FALSE(fs::exists(path + "-wal"));
}

class LogLines {
 public:
  LogLines() {
    logging::SetSinkForTest([this](const std::string& line) {
      std::lock_guard<std::mutex> l(mu_);
      text_ += line + "\n";
    });
  }
  ~LogLines() { logging::SetSinkForTest(nullptr); }
  std::string text() {
    logging::Flush();
    std::lock_guard<std::mutex> l(mu_);
    return text_;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

TEST(SqliteStoreSchemaTest, Version1IsMigrated) {
  TempDir dir;
  WriteVersion1(dir.db(), 50);
  {
    LogLines log;
    auto store = MustOpen(Opts(dir));
    ASSERT_TRUE(store);
    EXPECT_THAT(log.text(),
                HasSubstr(absl::StrCat("event=schema_migrated from=1 to=2 path=", dir.db())));
    // An earlier build's directory has no COMMITTED file: detection starts now, and says so.
    EXPECT_THAT(log.text(), HasSubstr("event=committed_file_missing"));
    auto rows = LoadMap(*store);
    ASSERT_EQ(rows.size(), 50u);
    for (int i = 0; i < 50; ++i) {
      auto it = rows.find(absl::StrCat("session-", i));
      ASSERT_NE(it, rows.end()) << i;
      EXPECT_EQ(it->second.first, std::string(200, '\xaa'));
      EXPECT_EQ(it->second.second, i + 1);
    }
    EXPECT_EQ(*store->Commit(Put("session-0", "new")), 2);
  }
  EXPECT_EQ(Sql(dir.db(), "PRAGMA user_version"), "2");
  EXPECT_EQ(Sql(dir.db(), "SELECT value FROM meta WHERE key = 'commit_seq'"), "1");
  auto seq = sqlite_internal::ReadHighWater(dir.path() + "/COMMITTED");
  ASSERT_TRUE(seq.ok() && seq->has_value()) << seq.status();
  EXPECT_EQ(**seq, 1);
  // The second open finds version 2: no migration.
  LogLines log;
  ASSERT_TRUE(MustOpen(Opts(dir)));
  EXPECT_THAT(log.text(), Not(HasSubstr("schema_migrated")));
}

// The failure seam: whatever SQLite said, on a full disk the message says so.
TEST(SqliteStoreSchemaTest, NoSpaceMessage) {
  using sqlite_internal::DiskSpace;
  using sqlite_internal::ExplainNoSpace;
  const absl::Status io = absl::UnavailableError(
      "/d/lrsched.db: PRAGMA application_id: disk I/O error (sqlite code 4874)");
  absl::Status s = ExplainNoSpace(io, "/d", DiskSpace{4096, 1 << 30}, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("disk full: the disk holding /d has 4096 bytes free of "
                                     "1073741824 bytes; free space there and start again: "));
  EXPECT_THAT(s.message(), HasSubstr(io.message()));
  // Room on the disk and nothing marked: someone else's problem, unchanged.
  EXPECT_EQ(ExplainNoSpace(io, "/d", DiskSpace{1 << 30, 1 << 30}, 0), io);
  EXPECT_EQ(ExplainNoSpace(io, "/d", std::nullopt, 0), io);
  const absl::Status corrupt = absl::DataLossError("/d/lrsched.db: quick_check failed");
  EXPECT_EQ(ExplainNoSpace(corrupt, "/d", DiskSpace{0, 1 << 30}, 0), corrupt);
  // ENOSPC from a system call, whatever statvfs says (it may have freed up meanwhile).
  absl::Status enospc =
      sqlite_internal::MarkNoSpace(absl::UnavailableError("/d/COMMITTED: open: full"), ENOSPC);
  EXPECT_THAT(ExplainNoSpace(enospc, "/d", DiskSpace{1 << 30, 1 << 30}, 0).message(),
              HasSubstr("disk full: the disk holding /d has 1073741824 bytes free"));
  EXPECT_THAT(ExplainNoSpace(enospc, "/d", std::nullopt, 0).message(),
              HasSubstr("disk full: the disk holding /d has unknown free space"));
  absl::Status quota = sqlite_internal::MarkNoSpace(absl::UnavailableError("x"), EDQUOT);
  EXPECT_THAT(ExplainNoSpace(quota, "/d", DiskSpace{1 << 30, 1 << 30}, 0).message(),
              HasSubstr("disk quota exhausted"));
}

// SQLITE_FULL at start-up (here: the size limit during the migration, which needs two new
// pages) is reported as such rather than as a bare SQLite error; the file stays version 1.
TEST(SqliteStoreSchemaTest, FullDatabaseAtStartupSaysSo) {
  TempDir dir;
  WriteVersion1(dir.db(), 20);
  SqliteStore::Options o = Opts(dir);
  o.max_db_bytes = static_cast<int64_t>(fs::file_size(dir.db()));
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(o);
  ASSERT_FALSE(s.ok());
  std::cout << "[          ] " << s.status() << "\n";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.status().message(),
              HasSubstr(absl::StrCat("database full: the database in ", dir.path(),
                                     " reached its size limit (max_db_bytes=", o.max_db_bytes)));
  EXPECT_THAT(s.status().message(), HasSubstr("database or disk is full"));
  EXPECT_EQ(Sql(dir.db(), "PRAGMA user_version"), "1");
  // With room, the migration goes through.
  auto store = MustOpen(Opts(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(Load(*store).size(), 20u);
}

}  // namespace
}  // namespace lrsched::store_test
