// Copyright lrsched authors.
#include "client/trace_json.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "scheduler/schedule.h"

namespace lrsched {

using json = nlohmann::json;

json RowsJson(const std::vector<double>& flat, size_t groups) {
  json rows = json::array();
  for (size_t r = 0; groups > 0 && r < flat.size() / groups; ++r) {
    json row = json::array();
    for (size_t g = 0; g < groups; ++g) row.push_back(flat[r * groups + g]);
    rows.push_back(std::move(row));
  }
  return rows;
}

json TraceJson(const Trace& t, const json& state_dict) {
  json out{{"lr", RowsJson(t.lr, t.groups)}};
  if (t.has_momentum) out["momentum"] = RowsJson(t.momentum, t.groups);
  if (!t.error.ok()) {
    out["error"] = std::string(t.error.message());
    out["error_at_step"] = t.error_at_step;
  } else if (!state_dict.is_null()) {
    out["state_dict"] = state_dict;
  }
  return out;
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
