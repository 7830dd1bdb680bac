// Copyright lrsched authors.
//
// BufferedFdWriter: writes text to a file descriptor (the log's stderr) from a background
// thread, many lines per write(2), so that a thread that logs does not make a system call per
// line, nor hold a lock across one that other logging threads then queue behind. It is what
// lets the server write one access-log line per Step (server/ops/access_log.h) at thousands of
// steps per second on gRPC's few threads.
//
//   BufferedFdWriter w({.fd = 2});
//   w.Append(line);  // copied; written within about `delay`
//   w.Write(line);   // written, after everything appended before it, when Write returns
//
// Invariants: bytes reach the descriptor in the order Append/Write were called (a Write
// first writes what is buffered); text passed in one call is written contiguously, never
// interleaved with another call's, when the descriptor is a regular file or a pipe whose
// reader keeps up; at most about `max_buffered` bytes wait in memory: an Append beyond that
// writes on its caller's thread, which then waits for the descriptor as an unbuffered write
// would. What is buffered is lost if the process dies without Flush or the destructor (e.g.
// kill -9): at most the last `delay` of appended text. Thread-safe.
#ifndef LRSCHED_SERVER_LOG_WRITER_H_
#define LRSCHED_SERVER_LOG_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace lrsched::logging {

class BufferedFdWriter {
 public:
  struct Options {
    int fd = 2;  // not owned
    // How long the thread gathers lines after the first one arrives before writing them: the
    // longest an appended line waits, and what makes one write carry many lines under load.
    absl::Duration delay = absl::Milliseconds(2);
    size_t max_buffered = size_t{1} << 20;
  };

  explicit BufferedFdWriter(Options options);
  ~BufferedFdWriter();  // Flush()es, then stops the thread
  BufferedFdWriter(const BufferedFdWriter&) = delete;
  BufferedFdWriter& operator=(const BufferedFdWriter&) = delete;

  void Append(std::string_view text);
  void Write(std::string_view text);
  void Flush() { Write({}); }

  // write(2) calls made so far that wrote something: lines per write shows the batching.
  int64_t writes() const;

 private:
  void Run();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !buffer_.empty() || stop_; }
  // Writes buffer_ (then `more`) to the descriptor. The caller holds write_mu_, so whatever
  // it takes from buffer_ is written before anything appended after it.
  void WriteOut(std::string_view more) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  const Options options_;

  // Held while writing to the descriptor; taken before mu_, never after.
  mutable absl::Mutex write_mu_;
  std::string spare_ ABSL_GUARDED_BY(write_mu_);  // swapped with buffer_: keeps its capacity
  int64_t writes_ ABSL_GUARDED_BY(write_mu_) = 0;

  mutable absl::Mutex mu_;
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  absl::Notification stopping_;  // notified by the destructor
  std::thread thread_;
};

}  // namespace lrsched::logging

#endif  // LRSCHED_SERVER_LOG_WRITER_H_
