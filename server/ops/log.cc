// Copyright lrsched authors.
#include "server/ops/log.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/ops/log_writer.h"

namespace lrsched::logging {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

std::mutex& SinkMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
// Guarded by SinkMutex().
std::function<void(const std::string&)>& Sink() {
  static auto* sink = new std::function<void(const std::string&)>;
  return *sink;
}
// Whether a test sink is set: lets a line skip SinkMutex, which every logging thread shares.
std::atomic<bool> g_has_sink{false};

// stderr, written from a background thread. Never destroyed (a line may be logged during
// static destruction); what it buffers is flushed at exit.
BufferedFdWriter& Stderr() {
  static BufferedFdWriter* const writer = [] {
    auto* w = new BufferedFdWriter(BufferedFdWriter::Options{});
    std::atexit([] { Stderr().Flush(); });
    return w;
  }();
  return *writer;
}

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool NeedsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

void AppendValue(std::string* out, std::string_view v) {
  if (!NeedsQuoting(v)) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (unsigned char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < ' ' || c == 0x7f) {
          out->append(absl::StrFormat("\\x%02x", c));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

// Appends "2024-05-01T12:00:00.123456Z" (UTC, microseconds). absl::FormatTime costs a few
// thousand instructions, paid on every access-log line (one per Step): only the part that
// changes once a second goes through it, cached per thread.
void AppendTimestamp(std::string* out, absl::Time now) {
  thread_local int64_t cached_second = INT64_MIN;
  thread_local std::string cached_prefix;  // "2024-05-01T12:00:00"
  const int64_t micros = absl::ToUnixMicros(now);
  int64_t second = micros / 1000000;
  int64_t micro = micros % 1000000;
  if (micro < 0) {  // before 1970: floor, not truncation
    micro += 1000000;
    second -= 1;
  }
  if (second != cached_second) {
    cached_prefix =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached_second = second;
  }
  out->append(cached_prefix);
  char frac[9] = {'.', '0', '0', '0', '0', '0', '0', 'Z', '\0'};
  for (int i = 6; i >= 1; --i, micro /= 10) frac[i] = static_cast<char>('0' + micro % 10);
  out->append(frac, 8);
}

}  // namespace

std::string FormatTimestampForTest(absl::Time t) {
  std::string out;
  AppendTimestamp(&out, t);
  return out;
}

void SetMinLevel(Level level) { g_min_level.store(static_cast<int>(level)); }

bool ParseLevel(std::string_view text, Level* out) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarning, Level::kError}) {
    if (text == LevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

void SetSinkForTest(std::function<void(const std::string& line)> sink) {
  std::lock_guard<std::mutex> lock(SinkMutex());
  g_has_sink.store(sink != nullptr);
  Sink() = std::move(sink);
}

void Flush() { Stderr().Flush(); }

Line::Line(Level level, std::string_view event)
    : enabled_(static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed)),
      urgent_(level >= Level::kWarning) {
  if (!enabled_) return;
  text_.reserve(160);
  text_.append("ts=");
  AppendTimestamp(&text_, absl::Now());
  absl::StrAppend(&text_, " level=", LevelName(level), " event=");
  AppendValue(&text_, event);
}

Line::~Line() {
  if (!enabled_) return;
  text_.push_back('\n');
  if (g_has_sink.load()) {
    std::lock_guard<std::mutex> lock(SinkMutex());
    if (Sink()) {
      Sink()(text_);
      return;
    }
  }
  // A warning may come right before the process dies: it is out before we return.
  if (urgent_) {
    Stderr().Write(text_);
  } else {
    Stderr().Append(text_);
  }
}

Line& Line::Kv(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  text_.push_back(' ');
  text_.append(key.data(), key.size());
  text_.push_back('=');
  AppendValue(&text_, value);
  return *this;
}

Line& Line::Kv(std::string_view key, int64_t value) {
  return Kv(key, std::string_view(absl::StrCat(value)));
}
Line& Line::Kv(std::string_view key, uint64_t value) {
  return Kv(key, std::string_view(absl::StrCat(value)));
}
Line& Line::Kv(std::string_view key, double value) {
  return Kv(key, std::string_view(absl::StrFormat("%.17g", value)));
}
Line& Line::Kv(std::string_view key, bool value) {
  return Kv(key, std::string_view(value ? "true" : "false"));
}

Line& Line::Err(const absl::Status& status) {
  if (!enabled_ || status.ok()) return *this;
  Kv("code", std::string_view(absl::StatusCodeToString(status.code())));
  return Kv("msg", std::string_view(std::string(status.message())));
}

}  // namespace lrsched::logging
