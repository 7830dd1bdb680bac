// Copyright lrsched authors.
//
// Structured logging for the server: one line per event on stderr, as key=value pairs
//   ts=2024-05-01T12:00:00.123456Z level=info event=listening addr=127.0.0.1:50051
// so that both people and scripts (tests read "event=listening addr=...") can read it.
//
//   logging::Info("session_created").Kv("name", name).Kv("revision", 1);
//
// A Line collects its pairs and hands them over in one piece when it goes out of scope, so
// lines from concurrent threads never interleave. Debug and info lines are written by a
// background thread a few milliseconds later, many per write(2) (log_writer.h), since the
// access log writes one per Step; warnings and errors are written (after every line before
// them) before the statement that logs them returns. Buffered lines are flushed at exit() and
// by Flush; a process killed outright loses at most the last few milliseconds of them.
// Values containing spaces, quotes, '=' or control characters are written quoted, with C
// escapes. Lines below the minimum level (SetMinLevel) cost one comparison and are not
// formatted.
#ifndef LRSCHED_SERVER_LOG_H_
#define LRSCHED_SERVER_LOG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace lrsched::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetMinLevel(Level level);
// Parses "debug", "info", "warning", "error"; false for anything else.
bool ParseLevel(std::string_view text, Level* out);

// The `ts=` value of a line written at `t`: "2024-05-01T12:00:00.123456Z".
std::string FormatTimestampForTest(absl::Time t);

// Where finished lines go (default: stderr). Tests may capture them; pass nullptr to restore.
// A sink receives every line synchronously, on the logging thread.
void SetSinkForTest(std::function<void(const std::string& line)> sink);

// Writes out the buffered lines before returning.
void Flush();

class Line {
 public:
  Line(Level level, std::string_view event);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& Kv(std::string_view key, std::string_view value);
  Line& Kv(std::string_view key, const char* value) { return Kv(key, std::string_view(value)); }
  Line& Kv(std::string_view key, const std::string& value) {
    return Kv(key, std::string_view(value));
  }
  Line& Kv(std::string_view key, int64_t value);
  Line& Kv(std::string_view key, int value) { return Kv(key, static_cast<int64_t>(value)); }
  Line& Kv(std::string_view key, uint64_t value);
  Line& Kv(std::string_view key, double value);
  Line& Kv(std::string_view key, bool value);
  // code=... msg=... for a non-OK status.
  Line& Err(const absl::Status& status);

 private:
  bool enabled_;
  bool urgent_;  // warning or error: written before the destructor returns
  std::string text_;
};

inline Line Debug(std::string_view event) { return Line(Level::kDebug, event); }
inline Line Info(std::string_view event) { return Line(Level::kInfo, event); }
inline Line Warning(std::string_view event) { return Line(Level::kWarning, event); }
inline Line Error(std::string_view event) { return Line(Level::kError, event); }

}  // namespace lrsched::logging

#endif  // LRSCHED_SERVER_LOG_H_
