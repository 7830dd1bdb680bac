// Copyright lrsched authors.
//
// Helpers shared by the SqliteStore tests (store_test.cc, store_file_test.cc,
// store_crash_test.cc, store_exclusive_test.cc): a temporary directory per test, file bytes,
// mutations, LoadAll into a vector or a map, and polling for a condition.
#ifndef LRSCHED_TESTS_STORE_TEST_UTIL_H_
#define LRSCHED_TESTS_STORE_TEST_UTIL_H_

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/sqlite/sqlite_store.h"
#include "server/store/testing/store_rows.h"

namespace lrsched::store_test {

// Polls `cond` every millisecond until it holds (true) or `timeout` has passed (false).
template <typename Cond>
bool WaitFor(Cond cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A fresh directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string templ = ::testing::TempDir() + "store_test.XXXXXX";
    char* p = mkdtemp(templ.data());
    EXPECT_NE(p, nullptr) << templ;
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string db() const { return path_ + "/lrsched.db"; }
  std::string journal() const { return path_ + "/journal"; }

 private:
  std::string path_;
};

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// The direct-SQLite path (no journal), which these files test: its transactions, WAL and
// COMMITTED file. The journal's own tests (journal_store_test.cc) use JournalOpts.
inline SqliteStore::Options Opts(const TempDir& dir) {
  SqliteStore::Options o;
  o.dir = dir.path();
  o.journal = false;
  return o;
}

inline SqliteStore::Options JournalOpts(const TempDir& dir) {
  SqliteStore::Options o;
  o.dir = dir.path();
  o.journal = true;
  return o;
}

inline std::unique_ptr<SqliteStore> MustOpen(const SqliteStore::Options& o) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

using store_rows::Del;
using store_rows::Load;
using store_rows::LoadMap;
using store_rows::Put;
using store_rows::Row;

}  // namespace lrsched::store_test

#endif  // LRSCHED_TESTS_STORE_TEST_UTIL_H_
