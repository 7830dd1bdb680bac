// Copyright lrsched authors.
//
// The structured log (server/ops/log.h): line layout, quoting, levels, and the cached timestamp,
// which must read exactly as absl::FormatTime would write it, at every microsecond.
#include "server/ops/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lrsched::logging {
namespace {

using ::testing::MatchesRegex;

std::string Reference(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

TEST(LogTimestampTest, MatchesAbslFormatTime) {
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::FromUnixMicros(1),
      absl::FromUnixMicros(-1),  // 1969-12-31T23:59:59.999999Z
      absl::FromUnixMicros(999999),
      absl::FromUnixMicros(1000000),
      absl::FromUnixMicros(-1000000),
      absl::FromUnixMicros(-1500000),
      absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 59, 59), absl::UTCTimeZone()) +
          absl::Microseconds(999999),
      absl::FromCivil(absl::CivilSecond(2100, 1, 1, 0, 0, 0), absl::UTCTimeZone()),
  };
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> micros(-2'000'000'000'000'000, 4'000'000'000'000'000);
  for (int i = 0; i < 20000; ++i) times.push_back(absl::FromUnixMicros(micros(rng)));
  // Runs within one second and across its edge, where the per-thread cache must turn over.
  const absl::Time base = absl::FromUnixSeconds(1'700'000'000);
  for (int us = -3; us <= 3; ++us) times.push_back(base + absl::Microseconds(us));
  for (int i = 0; i < 2000; ++i) times.push_back(base + absl::Microseconds(i * 997));
  for (absl::Time t : times) {
    ASSERT_EQ(FormatTimestampForTest(t), Reference(t)) << absl::ToUnixMicros(t);
  }
  // Sub-microsecond parts are cut, as %E6S does.
  EXPECT_EQ(FormatTimestampForTest(base + absl::Nanoseconds(1999)),
            Reference(base + absl::Nanoseconds(1999)));
}

TEST(LogLineTest, LayoutQuotingAndLevels) {
  std::vector<std::string> lines;
  SetSinkForTest([&](const std::string& line) { lines.push_back(line); });
  SetMinLevel(Level::kInfo);
  Info("access").Kv("method", "Step").Kv("session", "runs/a b").Kv("epoch", 12).Kv("ok", true);
  Debug("hidden").Kv("x", 1);
  Warning("odd").Kv("msg", std::string("a\"b\\c\n\x01"));
  SetSinkForTest(nullptr);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0],
              MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}"
                           "Z "
                           "level=info event=access method=Step session=\"runs/a b\" epoch=12 "
                           "ok=true\n"));
  EXPECT_THAT(lines[1],
              ::testing::EndsWith(" level=warning event=odd msg=\"a\\\"b\\\\c\\n\\x01\"\n"));
}

// The real destination: stderr (fd 2, pointed at a pipe here). Info lines wait in the buffer;
// a warning writes them, then itself, before it returns; Flush writes what is left.
TEST(LogLineTest, StderrKeepsOrderAndWritesWarningsAtOnce) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  Flush();  // nothing of earlier tests may reach the pipe
  const int saved = ::dup(2);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(::dup2(fds[1], 2), 2);
  auto read_now = [&] {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  };
  SetMinLevel(Level::kInfo);
  Info("one");
  Info("two");
  Warning("three");
  std::string got = read_now();
  Info("four");
  Flush();
  std::string rest = read_now();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fds[0]);
  ::close(fds[1]);
  std::vector<std::string> lines = absl::StrSplit(got, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << got;
  EXPECT_THAT(lines[0], ::testing::EndsWith("level=info event=one"));
  EXPECT_THAT(lines[1], ::testing::EndsWith("level=info event=two"));
  EXPECT_THAT(lines[2], ::testing::EndsWith("level=warning event=three"));
  EXPECT_THAT(rest, ::testing::EndsWith("level=info event=four\n"));
}

}  // namespace
}  // namespace lrsched::logging
