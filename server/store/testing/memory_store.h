// Copyright lrsched authors.
//
// MemoryStore: an in-memory Store for tests, with the SQLite store's revision rules (first put
// 1, +1 per put, a delete removes the key and returns 0) and compare-and-swap (its messages too;
// it passes the core contract, tests/store/store_contract_test.cc), plus failure
// injection: FailNextCommits(n, status) makes the next n Commit calls fail with `status`
// without writing. Close() makes later Commits fail UNAVAILABLE until Reopen(), which a test
// uses to "restart" a server on the same data. HoldCommits() makes Commit block (as a slow
// disk would) until ReleaseCommits(); commits_waiting() tells how many are blocked.
#ifndef LRSCHED_TESTS_MEMORY_STORE_H_
#define LRSCHED_TESTS_MEMORY_STORE_H_

#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/store/store.h"

namespace lrsched {

class MemoryStore final : public Store {
 public:
  absl::StatusOr<int64_t> Commit(const Mutation& m) override {
    absl::MutexLock l(&mu_);
    ++waiting_;
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
    --waiting_;
    if (closed_) return absl::UnavailableError("store closed");
    if (fail_next_ > 0) {
      --fail_next_;
      return fail_status_;
    }
    auto it = rows_.find(m.name);
    const int64_t current = it == rows_.end() ? 0 : it->second.second;
    if (m.expected_revision && *m.expected_revision != current) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session \"", m.name, "\": expected revision ", *m.expected_revision,
          ", current revision ", current, it == rows_.end() ? " (does not exist)" : ""));
    }
    ++stats_.commits;
    ++stats_.transactions;
    if (m.kind == Mutation::Kind::kDelete) {
      if (it != rows_.end()) rows_.erase(it);
      return 0;
    }
    rows_[m.name] = {m.value, current + 1};
    return current + 1;
  }

  absl::Status LoadAll(
      const std::function<absl::Status(std::string_view, std::string_view, int64_t)>& fn) override {
    std::map<std::string, std::pair<std::string, int64_t>> copy;
    {
      absl::MutexLock l(&mu_);
      if (closed_) return absl::UnavailableError("store closed");
      copy = rows_;
    }
    for (const auto& [name, row] : copy) {
      absl::Status s = fn(name, row.first, row.second);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  void Close() override {
    absl::MutexLock l(&mu_);
    closed_ = true;
  }
  Stats stats() const override {
    absl::MutexLock l(&mu_);
    return stats_;
  }

  // Test controls.
  void Reopen() {
    absl::MutexLock l(&mu_);
    closed_ = false;
  }
  void FailNextCommits(int n, absl::Status status) {
    absl::MutexLock l(&mu_);
    fail_next_ = n;
    fail_status_ = std::move(status);
  }
  void Put(const std::string& name, const std::string& value) {
    absl::MutexLock l(&mu_);
    rows_[name] = {value, rows_[name].second + 1};
  }
  void HoldCommits() {
    absl::MutexLock l(&mu_);
    held_ = true;
  }
  void ReleaseCommits() {
    absl::MutexLock l(&mu_);
    held_ = false;
  }
  int commits_waiting() const {
    absl::MutexLock l(&mu_);
    return held_ ? waiting_ : 0;
  }
  size_t size() const {
    absl::MutexLock l(&mu_);
    return rows_.size();
  }
  std::string Get(const std::string& name) const {
    absl::MutexLock l(&mu_);
    auto it = rows_.find(name);
    return it == rows_.end() ? "" : it->second.first;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::pair<std::string, int64_t>> rows_;
  bool closed_ = false;
  bool held_ = false;
  int waiting_ = 0;
  int fail_next_ = 0;
  absl::Status fail_status_;
  Stats stats_;
};

}  // namespace lrsched

#endif  // LRSCHED_TESTS_MEMORY_STORE_H_
