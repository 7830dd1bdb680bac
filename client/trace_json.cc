// Copyright lrsched authors.
#include "client/trace_json.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "scheduler/json_text.h"
#include "scheduler/schedule.h"

namespace lrsched {

using json = nlohmann::json;

namespace {

// Collects text and hands it to the stream in chunks, so a trace's text is never held whole.
class ChunkedWriter {
 public:
  explicit ChunkedWriter(std::ostream& out) : out_(out) { text_.reserve(kChunk + 4096); }

  std::string* text() { return &text_; }
  void MaybeFlush() {
    if (text_.size() >= kChunk) Flush();
  }
  void Flush() {
    out_.write(text_.data(), static_cast<std::streamsize>(text_.size()));
    text_.clear();
  }

 private:
  static constexpr size_t kChunk = 64 * 1024;
  std::ostream& out_;
  std::string text_;
};

// The members of the top-level object, comma-separated in the order they are written.
class Members {
 public:
  explicit Members(std::string* text) : text_(text) {}
  void Key(std::string_view key) {
    text_->push_back(first_ ? '{' : ',');
    first_ = false;
    json_text::AppendKey(key, text_);
  }
  void End() { text_->append(first_ ? "{}" : "}"); }

 private:
  std::string* text_;
  bool first_ = true;
};

// A column's last number and its text: schedules hold values for many steps (StepLR, a
// constant momentum), and copying 3-20 bytes is several times cheaper than formatting.
struct LastNumber {
  uint64_t bits = 0;
  bool set = false;
  uint8_t size = 0;
  char text[32];
};

void AppendCached(double v, LastNumber* last, std::string* text) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if (last->set && bits == last->bits) {
    text->append(last->text, last->size);
    return;
  }
  const size_t at = text->size();
  json_text::AppendDouble(v, text);
  last->bits = bits;
  last->set = true;
  last->size = static_cast<uint8_t>(text->size() - at);
  std::memcpy(last->text, text->data() + at, last->size);
}

// `"name":[[g0,g1,...] per row]`: every kind of row (lr, momentum, ...) goes through here.
void WriteRows(std::string_view name, const std::vector<double>& flat, size_t groups,
               Members* members, ChunkedWriter* w) {
  std::string* text = w->text();
  members->Key(name);
  text->push_back('[');
  std::vector<LastNumber> last(groups);
  const size_t rows = groups == 0 ? 0 : flat.size() / groups;
  for (size_t r = 0; r < rows; ++r) {
    text->append(r == 0 ? "[" : ",[");
    for (size_t g = 0; g < groups; ++g) {
      if (g > 0) text->push_back(',');
      AppendCached(flat[r * groups + g], &last[g], text);
    }
    text->push_back(']');
    w->MaybeFlush();
  }
  text->push_back(']');
}

}  // namespace

absl::Status WriteTraceJson(const Trace& t, const json& state_dict, std::ostream& out) {
  ChunkedWriter w(out);
  std::string* text = w.text();
  Members members(text);
  if (!t.error.ok()) {
    members.Key("error");
    const absl::string_view message = t.error.message();
    json_text::AppendString(std::string_view(message.data(), message.size()), text);
    members.Key("error_at_step");
    json_text::AppendInt(t.error_at_step, text);
  }
  WriteRows("lr", t.lr, t.groups, &members, &w);
  if (t.has_momentum) WriteRows("momentum", t.momentum, t.groups, &members, &w);
  if (t.error.ok() && !state_dict.is_null()) {
    members.Key("state_dict");
    json_text::AppendJson(state_dict, text);
  }
  members.End();
  text->push_back('\n');
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
