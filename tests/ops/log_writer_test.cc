// Copyright lrsched authors.
//
// BufferedFdWriter (server/ops/log_writer.h) over a pipe: order, whole lines under concurrency,
// many lines per write, the synchronous Write, the memory bound, and flushing on destruction.
#include "server/ops/log_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lrsched::logging {
namespace {

// A pipe whose read end is non-blocking, large enough for every test's text.
class Pipe {
 public:
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    read_ = fds[0];
    write_ = fds[1];
    ::fcntl(read_, F_SETFL, ::fcntl(read_, F_GETFL) | O_NONBLOCK);
    ::fcntl(write_, F_SETPIPE_SZ, 1 << 20);
  }
  ~Pipe() {
    ::close(read_);
    ::close(write_);
  }
  int write_fd() const { return write_; }

  // What is readable right now, without waiting.
  std::string ReadNow() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(read_, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  // Reads until `bytes` bytes came, or 10 s passed.
  std::string ReadAtLeast(size_t bytes) {
    std::string out = ReadNow();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (out.size() < bytes && absl::Now() < deadline) {
      pollfd pfd{read_, POLLIN, 0};
      ::poll(&pfd, 1, 50);
      out += ReadNow();
    }
    return out;
  }

 private:
  int read_ = -1;
  int write_ = -1;
};

BufferedFdWriter::Options Opts(int fd, absl::Duration delay, size_t max_buffered = 1 << 20) {
  BufferedFdWriter::Options o;
  o.fd = fd;
  o.delay = delay;
  o.max_buffered = max_buffered;
  return o;
}

TEST(BufferedFdWriterTest, AppendedLinesArriveInOrderInFewWrites) {
  Pipe pipe;
  BufferedFdWriter w(Opts(pipe.write_fd(), absl::Milliseconds(50)));
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::string line = absl::StrCat("line ", i, "\n");
    w.Append(line);
    expected += line;
  }
  EXPECT_EQ(pipe.ReadAtLeast(expected.size()), expected);
  // Appended well within one delay: the thread gathered them into a few writes, not 200.
  EXPECT_LE(w.writes(), 5);
  EXPECT_GE(w.writes(), 1);
}

TEST(BufferedFdWriterTest, WriteGoesOutBeforeReturningAfterWhatWasAppended) {
  Pipe pipe;
  // A delay far longer than the test: only Write can have put the text out.
  BufferedFdWriter w(Opts(pipe.write_fd(), absl::Seconds(60)));
  w.Append("first\n");
  w.Append("second\n");
  w.Write("urgent\n");
  EXPECT_EQ(pipe.ReadNow(), "first\nsecond\nurgent\n");
  w.Append("later\n");
  w.Flush();
  EXPECT_EQ(pipe.ReadNow(), "later\n");
  w.Flush();  // nothing buffered: writes nothing
  EXPECT_EQ(pipe.ReadNow(), "");
}

TEST(BufferedFdWriterTest, DestructorWritesWhatIsBuffered) {
  Pipe pipe;
  {
    BufferedFdWriter w(Opts(pipe.write_fd(), absl::Seconds(60)));
    w.Append("kept\n");
  }
  EXPECT_EQ(pipe.ReadNow(), "kept\n");
}

// The thread is gathering (waiting out a long delay) when the writer is destroyed: the
// destructor must not wait for the delay.
TEST(BufferedFdWriterTest, DestructorCutsTheGatheringWaitShort) {
  Pipe pipe;
  const absl::Time t0 = absl::Now();
  {
    BufferedFdWriter w(Opts(pipe.write_fd(), absl::Seconds(60)));
    w.Append("gathered\n");
    absl::SleepFor(absl::Milliseconds(100));  // the thread wakes and starts its wait
  }
  EXPECT_LT(absl::Now() - t0, absl::Seconds(30));
  EXPECT_EQ(pipe.ReadNow(), "gathered\n");
}

TEST(BufferedFdWriterTest, AppendBeyondTheBoundWritesOnTheCallersThread) {
  Pipe pipe;
  BufferedFdWriter w(Opts(pipe.write_fd(), absl::Seconds(60), /*max_buffered=*/64));
  w.Append("short\n");
  EXPECT_EQ(pipe.ReadNow(), "");  // below the bound: waits for the (long) delay
  std::string long_line(100, 'x');
  long_line += '\n';
  w.Append(long_line);
  EXPECT_EQ(pipe.ReadNow(), "short\n" + long_line);
}

TEST(BufferedFdWriterTest, ConcurrentLinesStayWholeAndInEachThreadsOrder) {
  Pipe pipe;
  BufferedFdWriter w(Opts(pipe.write_fd(), absl::Milliseconds(1), /*max_buffered=*/4096));
  constexpr int kThreads = 4, kLines = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&w, t] {
      for (int i = 0; i < kLines; ++i) {
        // Every fifth line synchronous, to mix both paths.
        std::string line = absl::StrCat("t=", t, " i=", i, " ", std::string(40, 'a' + t), "\n");
        if (i % 5 == 0) {
          w.Write(line);
        } else {
          w.Append(line);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  w.Flush();
  std::string all = pipe.ReadNow();
  std::vector<std::string> lines = absl::StrSplit(all, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  std::map<int, int> next;  // thread -> next line number expected
  for (const std::string& line : lines) {
    int t = -1, i = -1;
    ASSERT_EQ(std::sscanf(line.c_str(), "t=%d i=%d", &t, &i), 2) << line;
    ASSERT_EQ(line, absl::StrCat("t=", t, " i=", i, " ", std::string(40, 'a' + t))) << line;
    ASSERT_EQ(i, next[t]) << "thread " << t << " out of order";
    next[t] = i + 1;
  }
}

TEST(BufferedFdWriterTest, AFailingDescriptorDropsTextAndKeepsGoing) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);  // no reader: writes fail with EPIPE (SIGPIPE is ignored below)
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  {
    BufferedFdWriter w(Opts(fds[1], absl::Milliseconds(1)));
    w.Append("lost\n");
    w.Write("lost too\n");
    w.Flush();
    EXPECT_EQ(w.writes(), 0);
  }
  ::sigaction(SIGPIPE, &old, nullptr);
  ::close(fds[1]);
}

}  // namespace
}  // namespace lrsched::logging
