// Copyright lrsched authors.
#include "client/trace_json.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "scheduler/json_text.h"
#include "scheduler/schedule.h"

namespace lrsched {

using json = nlohmann::json;

namespace {

// Collects text in a fixed buffer and hands it to the stream in chunks, so a trace's text is
// never held whole. Rows are written straight into the buffer (Room, then Advance).
class ChunkedWriter {
 public:
  explicit ChunkedWriter(std::ostream& out)
      : out_(out), buf_(new char[kSize]), cur_(buf_.get()), end_(buf_.get() + kSize) {}

  // At least `n` (<= kSize) writable bytes at the returned cursor.
  char* Room(size_t n) {
    if (static_cast<size_t>(end_ - cur_) < n) Flush();
    return cur_;
  }
  void Advance(char* to) { cur_ = to; }
  void Append(std::string_view s) {
    if (static_cast<size_t>(end_ - cur_) < s.size()) {
      Flush();
      if (s.size() > kSize) {
        out_.write(s.data(), static_cast<std::streamsize>(s.size()));
        return;
      }
    }
    std::memcpy(cur_, s.data(), s.size());
    cur_ += s.size();
  }
  void Flush() {
    out_.write(buf_.get(), cur_ - buf_.get());
    cur_ = buf_.get();
  }

 private:
  static constexpr size_t kSize = 64 * 1024;
  std::ostream& out_;
  std::unique_ptr<char[]> buf_;
  char* cur_;
  char* end_;
};

// The members of the top-level object, comma-separated in the order they are written.
class Members {
 public:
  explicit Members(ChunkedWriter* w) : w_(w) {}
  void Key(std::string_view key) {
    std::string text(1, first_ ? '{' : ',');
    first_ = false;
    json_text::AppendKey(key, &text);
    w_->Append(text);
  }
  void End() { w_->Append(first_ ? "{}" : "}"); }

 private:
  ChunkedWriter* w_;
  bool first_ = true;
};

// A column's last number and its text: schedules hold values for many steps (StepLR, a
// constant momentum), and copying 3-24 bytes is several times cheaper than formatting.
struct LastNumber {
  uint64_t bits = 0;
  bool set = false;
  uint8_t size = 0;
  char text[json_text::kMaxDoubleChars];
};

char* WriteCached(double v, LastNumber* last, char* out) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if (!last->set || bits != last->bits) {
    last->bits = bits;
    last->set = true;
    last->size = static_cast<uint8_t>(json_text::WriteDouble(v, last->text) - last->text);
  }
  std::memcpy(out, last->text, last->size);
  return out + last->size;
}

// `"name":[[g0,g1,...] per row]`: every kind of row (lr, momentum, ...) goes through here.
void WriteRows(std::string_view name, const std::vector<double>& flat, size_t groups,
               Members* members, ChunkedWriter* w) {
  members->Key(name);
  w->Append("[");
  std::vector<LastNumber> last(groups);
  const size_t rows = groups == 0 ? 0 : flat.size() / groups;
  const double* v = flat.data();
  for (size_t r = 0; r < rows; ++r) {
    for (size_t g = 0; g < groups; ++g) {
      char* p = w->Room(json_text::kMaxDoubleChars + 3);  // ",[", the number, "]"
      if (g == 0) {
        if (r > 0) *p++ = ',';
        *p++ = '[';
      } else {
        *p++ = ',';
      }
      p = WriteCached(*v++, &last[g], p);
      if (g + 1 == groups) *p++ = ']';
      w->Advance(p);
    }
  }
  w->Append("]");
}

}  // namespace

absl::Status WriteTraceJson(const Trace& t, const json& state_dict, std::ostream& out) {
  ChunkedWriter w(out);
  Members members(&w);
  std::string text;
  if (!t.error.ok()) {
    members.Key("error");
    const absl::string_view message = t.error.message();
    json_text::AppendString(std::string_view(message.data(), message.size()), &text);
    w.Append(text);
    members.Key("error_at_step");
    text.clear();
    json_text::AppendInt(t.error_at_step, &text);
    w.Append(text);
  }
  // Members in sorted order, as nlohmann's dump of the same object wrote them: a new kind of
  // row is one more WriteRows call at its place in that order.
  WriteRows("lr", t.lr, t.groups, &members, &w);
  if (t.has_momentum) WriteRows("momentum", t.momentum, t.groups, &members, &w);
  if (t.error.ok() && !state_dict.is_null()) {
    members.Key("state_dict");
    text.clear();
    json_text::AppendJson(state_dict, &text);
    w.Append(text);
  }
  if (t.has_weight_decay) WriteRows("weight_decay", t.weight_decay, t.groups, &members, &w);
  members.End();
  w.Append("\n");
  w.Flush();
  out.flush();
  if (!out) return absl::DataLossError("output: writing the trace failed");
  return absl::OkStatus();
}

json ConstructionErrorJson(const std::string& message) {
  return json{{"lr", json::array()}, {"error", message}, {"error_at_step", -1}};
}

namespace {
absl::Status ReadNumbers(const json& in, const char* key, std::vector<double>* out) {
  if (!in.contains(key) || in[key].is_null()) return absl::OkStatus();
  const json& a = in[key];
  if (!a.is_array()) return absl::InvalidArgumentError(absl::StrCat(key, ": expected a list"));
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].is_null() && std::string_view(key) == "metrics") {
      // No metric at that step (timm's Plateau); Simulate reads NaN so.
      out->push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    if (!a[i].is_number()) {
      return absl::InvalidArgumentError(absl::StrCat(key, "[", i, "]: expected a number"));
    }
    out->push_back(a[i].get<double>());
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<SimulateInput> ReadSimulateInput(const json& in, int64_t steps_override) {
  if (!in.is_object()) return absl::InvalidArgumentError("input: expected a JSON object");
  SimulateInput out;
  for (const char* k : {"optimizer", "scheduler"}) {
    if (!in.contains(k)) return absl::InvalidArgumentError(absl::StrCat(k, ": required"));
    out.spec[k] = in[k];
  }
  if (steps_override >= 0) {
    out.steps = steps_override;
  } else if (in.contains("steps") && in["steps"].is_number_integer() &&
             in["steps"].get<int64_t>() >= 0) {
    out.steps = in["steps"].get<int64_t>();
  } else {
    return absl::InvalidArgumentError("steps: required (a non-negative integer), or --steps");
  }
  absl::Status s = ReadNumbers(in, "metrics", &out.metrics);
  if (s.ok()) s = ReadNumbers(in, "epochs", &out.epochs);
  if (!s.ok()) return s;
  return out;
}

absl::Status CheckSimulateSize(const SimulateInput& in) {
  int64_t groups = 1;
  auto schedule = Schedule::Create(in.spec);
  if (schedule.ok()) {
    groups = std::max<int64_t>(1, static_cast<int64_t>((*schedule)->param_groups().size()));
  }
  // Divide rather than multiply: steps may be near INT64_MAX.
  if (in.steps > kMaxSimulateValues / groups) {
    return absl::InvalidArgumentError(absl::StrCat(
        "steps: ", in.steps, " steps x ", groups, " param group", groups == 1 ? "" : "s",
        " is more than the limit of ", kMaxSimulateValues,
        " values (lrsched-server's default --max_simulate_steps); simulate fewer steps"));
  }
  return absl::OkStatus();
}

}  // namespace lrsched
