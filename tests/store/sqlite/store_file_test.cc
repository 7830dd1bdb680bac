// Copyright lrsched authors.
//
// SqliteStore refuses files that are not its own, newer or damaged, with a message naming the
// file and the reason, and leaves them byte-identical with no new files beside them; it
// initializes an empty or missing file.
#include <sqlite3.h>

#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/sqlite/sqlite_store.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Opening must fail with `code` and a message naming the file and containing `reason`, and
// leave the file byte-identical and the directory without new files but the store's LOCK
// (taken before the file is read: see server/store/sqlite/data_dir_lock.h).
void ExpectRefused(const TempDir& dir, absl::StatusCode code, const std::string& reason) {
  std::string before = ReadBytes(dir.db());
  std::vector<std::string> listing = ListDir(dir.path());
  if (!fs::exists(fs::path(dir.path()) / "LOCK")) listing.push_back("LOCK");
  std::sort(listing.begin(), listing.end());
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Opts(dir));
  ASSERT_FALSE(s.ok());
  std::cout << "[          ] " << s.status() << "\n";
  EXPECT_EQ(s.status().code(), code) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr(dir.db()));
  EXPECT_THAT(s.status().message(), HasSubstr(reason));
  EXPECT_THAT(s.status().message(), HasSubstr("refusing to touch it"));
  EXPECT_TRUE(ReadBytes(dir.db()) == before) << "the file was modified";
  EXPECT_EQ(ListDir(dir.path()), listing);
}

TEST(SqliteStoreFileTest, TextFileIsRefused) {
  TempDir dir;
  WriteBytes(dir.db(), "name,value\nthis is a CSV file, not a database\n");
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition, "not a SQLite database");
  WriteBytes(dir.db(), "x");
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition, "not a SQLite database");
}

void MakeSqliteDb(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << err;
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(SqliteStoreFileTest, ForeignDatabaseIsRefused) {
  TempDir dir;
  MakeSqliteDb(dir.db(),
               "CREATE TABLE foo (x); INSERT INTO foo VALUES (1); "
               "CREATE TABLE bar (y)");
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition,
                "not an lrsched database (application_id 0, tables: bar, foo)");
}

TEST(SqliteStoreFileTest, OtherApplicationIdIsRefused) {
  TempDir dir;
  MakeSqliteDb(dir.db(), "PRAGMA application_id = 1234; CREATE TABLE sessions (x)");
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition,
                "not an lrsched database (application_id 1234)");
}

TEST(SqliteStoreFileTest, NewerSchemaIsRefused) {
  TempDir dir;
  ASSERT_TRUE(MustOpen(Opts(dir)));
  MakeSqliteDb(dir.db(), "PRAGMA user_version = 99");
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition, "schema version 99 is newer");
}

// application_id 0x4C525343 ("LRSC") and a schema version, as lrsched stamps its files.
constexpr char kLrschedV1[] = "PRAGMA application_id = 1280463683; PRAGMA user_version = 1; ";
constexpr char kLrschedV2[] = "PRAGMA application_id = 1280463683; PRAGMA user_version = 2; ";
constexpr char kSessionsTable[] =
    "CREATE TABLE sessions (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, "
    "revision INTEGER NOT NULL); ";

// lrsched's marker over other columns: refused read-only, before the read-write open would
// switch the file to WAL, saying what differs.
TEST(SqliteStoreFileTest, WrongColumnsAreRefused) {
  TempDir dir;
  MakeSqliteDb(dir.db(), absl::StrCat(kLrschedV1,
                                      "CREATE TABLE sessions (name TEXT, other BLOB); "
                                      "INSERT INTO sessions VALUES ('a', x'00')")
                             .c_str());
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition,
                "table sessions has columns (name TEXT, other BLOB) where lrsched schema "
                "version 1 has (name TEXT NOT NULL PRIMARY KEY, value BLOB NOT NULL, revision "
                "INTEGER NOT NULL)");
}

TEST(SqliteStoreFileTest, ExtraTableIsRefused) {
  TempDir dir;
  MakeSqliteDb(dir.db(),
               absl::StrCat(kLrschedV1, kSessionsTable, "CREATE TABLE extra (x)").c_str());
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition,
                "tables (extra, sessions) differ from lrsched schema version 1's (sessions)");
}

TEST(SqliteStoreFileTest, Version2WithoutMetaIsRefused) {
  TempDir dir;
  MakeSqliteDb(dir.db(), absl::StrCat(kLrschedV2, kSessionsTable).c_str());
  ExpectRefused(dir, absl::StatusCode::kDataLoss,
                "lrsched database (schema version 2) without meta table (tables: sessions)");
}

TEST(SqliteStoreFileTest, Version2WithoutCommitSeqIsRefused) {
  TempDir dir;
  MakeSqliteDb(dir.db(), absl::StrCat(kLrschedV2, kSessionsTable,
                                      "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, "
                                      "value INTEGER NOT NULL)")
                             .c_str());
  ExpectRefused(dir, absl::StatusCode::kDataLoss, "the meta table has no commit_seq row");
}

// Fills a store with enough sessions to span many pages and closes it (checkpointing the WAL
// into the file, so the damage below hits real data).
void FillAndClose(const TempDir& dir) {
  SqliteStore::Options o = Opts(dir);
  o.synchronous = SqliteStore::Options::Synchronous::kNormal;  // 2000 fsyncs would be slow
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(store->Commit(Put(absl::StrCat("session-", i), std::string(200, 'v'))).ok());
  }
  store->Close();
  ASSERT_FALSE(fs::exists(dir.db() + "-wal"));
  ASSERT_GT(fs::file_size(dir.db()), 100u * 4096);
}

TEST(SqliteStoreFileTest, GarbledDatabaseIsRefused) {
  TempDir dir;
  FillAndClose(dir);
  std::string bytes = ReadBytes(dir.db());
  size_t middle = bytes.size() / 2 / 4096 * 4096;
  for (size_t i = middle; i < middle + 4096; ++i) bytes[i] = static_cast<char>(0xA5);
  WriteBytes(dir.db(), bytes);
  ExpectRefused(dir, absl::StatusCode::kDataLoss, "");
}

TEST(SqliteStoreFileTest, TruncatedDatabaseIsRefused) {
  TempDir dir;
  FillAndClose(dir);
  fs::resize_file(dir.db(), fs::file_size(dir.db()) / 2);
  ExpectRefused(dir, absl::StatusCode::kDataLoss, "");
}

TEST(SqliteStoreFileTest, GarbledHeaderIsRefused) {
  TempDir dir;
  FillAndClose(dir);
  std::string bytes = ReadBytes(dir.db());
  bytes.replace(16, 8, "\x13\x37\xff\xff\x00\x00\x00\x00", 8);  // page size, versions
  WriteBytes(dir.db(), bytes);
  ExpectRefused(dir, absl::StatusCode::kDataLoss, "");
}

TEST(SqliteStoreFileTest, HotRollbackJournalIsRefused) {
  TempDir dir;
  FillAndClose(dir);
  WriteBytes(dir.db() + "-journal", "an interrupted transaction of some other program");
  std::string journal = ReadBytes(dir.db() + "-journal");
  ExpectRefused(dir, absl::StatusCode::kFailedPrecondition, "rollback journal");
  EXPECT_EQ(ReadBytes(dir.db() + "-journal"), journal);
}

TEST(SqliteStoreFileTest, EmptyFileIsInitialized) {
  TempDir dir;
  WriteBytes(dir.db(), "");
  auto store = MustOpen(Opts(dir));
  ASSERT_TRUE(store);
  EXPECT_EQ(*store->Commit(Put("a", "b")), 1);
}

TEST(SqliteStoreFileTest, MissingDirectoryIsCreated) {
  TempDir dir;
  SqliteStore::Options o;
  o.dir = dir.path() + "/nested/data";
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->path(), o.dir + "/lrsched.db");
  EXPECT_EQ(*store->Commit(Put("a", "b")), 1);
}

}  // namespace
}  // namespace lrsched::store_test
