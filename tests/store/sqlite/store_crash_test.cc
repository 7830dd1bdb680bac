// Copyright lrsched authors.
//
// SqliteStore durability against a crash: a child process commits from several threads and
// reports every acknowledged revision through a pipe; the parent SIGKILLs it mid-stream,
// reopens the store and requires every acknowledged commit to be there; with and without the
// journal.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/store/sqlite/sqlite_store.h"
#include "tests/store/sqlite/store_test_util.h"

namespace lrsched::store_test {
namespace {

constexpr int kThreads = 4;
constexpr int kKeysPerThread = 4;

// One acknowledgement, written with a single write(2) (atomic: smaller than PIPE_BUF).
struct Ack {
  int32_t thread;
  int32_t seq;  // the thread's commit number; key seq % kKeysPerThread, value seq
  int64_t revision;
};

std::string Key(int thread, int seq) {
  return absl::StrCat("crash-", thread, "-", seq % kKeysPerThread);
}

// The child: commits until killed. Never returns; exits non-zero on any failure.
[[noreturn]] void RunChild(const SqliteStore::Options& options, int fd) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(options);
  if (!store.ok()) _exit(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int seq = 0;; ++seq) {
        Mutation m;
        m.name = Key(t, seq);
        m.value = absl::StrCat(seq);
        absl::StatusOr<int64_t> r = (*store)->Commit(m);
        if (!r.ok()) _exit(3);
        Ack ack{t, seq, *r};
        if (write(fd, &ack, sizeof ack) != sizeof ack) _exit(4);
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(5);
}

void CrashAndCheck(SqliteStore::Options::Synchronous sync, bool journal = false) {
  TempDir dir;
  SqliteStore::Options options = journal ? JournalOpts(dir) : Opts(dir);
  options.synchronous = sync;
  // Small segments and a short delay, so that the kill lands amid rotations, applies and
  // segment deletions as well as appends.
  options.journal_segment_bytes = 4096;
  options.journal_apply_delay = absl::Milliseconds(5);

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    RunChild(options, fds[1]);
  }
  close(fds[1]);

  // Last acknowledged (seq, revision) per key.
  std::map<std::string, std::pair<int, int64_t>> acked;
  size_t n = 0;
  auto record = [&](const Ack& a) {
    auto& slot = acked[Key(a.thread, a.seq)];
    if (a.seq >= slot.first) slot = {a.seq, a.revision};
    ++n;
  };
  // Kill after a few hundred acknowledgements or two seconds, whichever comes first; then
  // drain what the child had already acknowledged before it died.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  Ack a;
  while (n < 400) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    if (read(fds[0], &a, sizeof a) != sizeof a) break;
    record(a);
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  while (read(fds[0], &a, sizeof a) == sizeof a) record(a);
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited early with status " << WEXITSTATUS(wstatus);
  ASSERT_GT(n, 0u) << "the child acknowledged nothing";

  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  std::map<std::string, std::pair<int, int64_t>> stored;
  ASSERT_TRUE((*store)
                  ->LoadAll([&](std::string_view name, std::string_view value, int64_t rev) {
                    int seq = -1;
                    if (!absl::SimpleAtoi(std::string(value), &seq))
                      return absl::DataLossError("value");
                    stored[std::string(name)] = {seq, rev};
                    return absl::OkStatus();
                  })
                  .ok());
  for (const auto& [key, want] : acked) {
    auto it = stored.find(key);
    ASSERT_NE(it, stored.end()) << key << " acknowledged but lost";
    // A commit may be durable without having been acknowledged, never the reverse.
    EXPECT_GE(it->second.second, want.second) << key;
    EXPECT_GE(it->second.first, want.first) << key;
    // Revisions and values still agree: commit `seq` of a key is its (seq / keys + 1)th put.
    EXPECT_EQ(it->second.second, it->second.first / kKeysPerThread + 1) << key;
  }
  std::cout << "[          ] " << n << " acknowledged before SIGKILL, all present\n";
}

TEST(SqliteStoreCrashTest, AcknowledgedCommitsSurviveSigkillFull) {
  CrashAndCheck(SqliteStore::Options::Synchronous::kFull);
}

// NORMAL gives up durability against power loss, not against a crash of the process.
TEST(SqliteStoreCrashTest, AcknowledgedCommitsSurviveSigkillNormal) {
  CrashAndCheck(SqliteStore::Options::Synchronous::kNormal);
}

// With the journal the acknowledgement comes after the append (and its fdatasync under FULL);
// the reopened store replays what the applier had not copied yet.
TEST(SqliteStoreCrashTest, AcknowledgedCommitsSurviveSigkillJournalFull) {
  CrashAndCheck(SqliteStore::Options::Synchronous::kFull, /*journal=*/true);
}

TEST(SqliteStoreCrashTest, AcknowledgedCommitsSurviveSigkillJournalNormal) {
  CrashAndCheck(SqliteStore::Options::Synchronous::kNormal, /*journal=*/true);
}

}  // namespace
}  // namespace lrsched::store_test
