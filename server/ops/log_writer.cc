// Copyright lrsched authors.
#include "server/ops/log_writer.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace lrsched::logging {

BufferedFdWriter::BufferedFdWriter(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

BufferedFdWriter::~BufferedFdWriter() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  stopping_.Notify();  // cuts a gathering wait short
  thread_.join();      // it writes what is left before it returns
}

void BufferedFdWriter::Append(std::string_view text) {
  bool full;
  {
    absl::MutexLock l(&mu_);
    // Unlocking wakes the thread if it waits for work (absl::Mutex evaluates its condition);
    // while it gathers or writes, appending costs no system call.
    buffer_.append(text.data(), text.size());
    full = buffer_.size() >= options_.max_buffered;
  }
  if (full) Flush();
}

void BufferedFdWriter::Write(std::string_view text) {
  absl::MutexLock w(&write_mu_);
  WriteOut(text);
}

int64_t BufferedFdWriter::writes() const {
  absl::MutexLock w(&write_mu_);
  return writes_;
}

void BufferedFdWriter::Run() {
  for (;;) {
    bool stop;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &BufferedFdWriter::HasWork));
      stop = stop_;
    }
    // Let the lines of the next moment join this one's write. Not on mu_: appending must not
    // find a waiter to check on each unlock.
    if (!stop) stopping_.WaitForNotificationWithTimeout(options_.delay);
    {
      absl::MutexLock w(&write_mu_);
      WriteOut({});
    }
    if (stop) {
      absl::MutexLock l(&mu_);
      if (buffer_.empty()) return;  // else an Append raced the stop: write it too
    }
  }
}

void BufferedFdWriter::WriteOut(std::string_view more) {
  {
    absl::MutexLock l(&mu_);
    spare_.swap(buffer_);
  }
  spare_.append(more.data(), more.size());
  const char* p = spare_.data();
  size_t left = spare_.size();
  while (left > 0) {
    ssize_t n = ::write(options_.fd, p, left);
    if (n > 0) {
      p += n;
      left -= static_cast<size_t>(n);
      ++writes_;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{options_.fd, POLLOUT, 0};
      ::poll(&pfd, 1, 100);  // a non-blocking descriptor: wait for room rather than spin
    } else {
      break;  // nowhere to report a failing log: drop this text, keep serving
    }
  }
  spare_.clear();
}

}  // namespace lrsched::logging
