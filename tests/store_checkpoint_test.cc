// Copyright lrsched authors.
//
// WalCheckpointer (server/sqlite_checkpointer.h): WAL checkpoints happen on their own thread,
// the WAL stays bounded when they cannot keep up, and nothing committed is lost either way.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/sqlite_checkpointer.h"
#include "server/sqlite_db.h"
#include "tests/store_test_util.h"

namespace lrsched::store_test {
namespace {

using sqlite_internal::Db;
using sqlite_internal::WalCheckpointer;

// A WAL database with one table; each Insert is one transaction of a full page's worth.
class WalDb {
 public:
  explicit WalDb(const std::string& path) : path_(path) {
    absl::StatusOr<Db> db = Db::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    EXPECT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    EXPECT_TRUE(db_.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                         "CREATE TABLE t (v BLOB)").ok());
  }
  void Insert(int i) {
    ASSERT_TRUE(db_.Exec(absl::StrCat("INSERT INTO t VALUES (zeroblob(3000 + ", i, "))").c_str())
                    .ok());
  }
  int64_t Rows() {
    absl::StatusOr<int64_t> n = db_.QueryInt("SELECT count(*) FROM t");
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }
  sqlite3* get() { return db_.get(); }
  int64_t WalBytes() const {
    std::error_code ec;
    auto n = std::filesystem::file_size(path_ + "-wal", ec);
    return ec ? 0 : static_cast<int64_t>(n);
  }
  int64_t DbBytes() const { return static_cast<int64_t>(std::filesystem::file_size(path_)); }

 private:
  std::string path_;
  Db db_;
};

template <typename Cond>
bool WaitFor(Cond cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(WalCheckpointerTest, CopiesTheWalBackOnItsOwnThread) {
  TempDir dir;
  WalDb db(dir.db());
  const int64_t db_bytes_before = db.DbBytes();
  WalCheckpointer::Options o;
  o.background_pages = 20;
  o.inline_pages = 1 << 30;  // never in the writer
  auto c = WalCheckpointer::Start(dir.db(), db.get(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  for (int i = 0; i < 100; ++i) db.Insert(i);
  ASSERT_TRUE(WaitFor([&] { return (*c)->checkpoints() >= 1; }));
  // The pages reached the database file itself, not only the WAL.
  EXPECT_TRUE(WaitFor([&] { return db.DbBytes() > db_bytes_before + 20 * 3000; }))
      << db.DbBytes();
  c->reset();
  EXPECT_EQ(db.Rows(), 100);
}

TEST(WalCheckpointerTest, WriterCheckpointsItselfPastTheInlineLimit) {
  TempDir dir;
  WalDb db(dir.db());
  WalCheckpointer::Options o;
  o.background_pages = 1 << 30;  // the thread is never asked: only the inline limit acts
  o.inline_pages = 20;
  auto c = WalCheckpointer::Start(dir.db(), db.get(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  for (int i = 0; i < 300; ++i) db.Insert(i);
  EXPECT_EQ((*c)->checkpoints(), 0);
  // 300 page-sized transactions, yet the WAL restarted near 20 frames each time. Without a
  // checkpoint it would hold all 300 (1.2 MB).
  EXPECT_LT(db.WalBytes(), 40 * (4096 + 24) + 32) << db.WalBytes();
  c->reset();
  EXPECT_EQ(db.Rows(), 300);
}

}  // namespace
}  // namespace lrsched::store_test
