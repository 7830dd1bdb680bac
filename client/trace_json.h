// Copyright lrsched authors.
//
// The JSON shape of a simulated trace, shared by `lrsched simulate` (local and --server) so both
// print byte-identical output:
//   {"lr": [[g0, g1, ...] per step], "momentum": [...] (where groups have one),
//    "state_dict": {...} (torch's, after the last step; omitted after a refused step),
//    "error": "...", "error_at_step": k (only where torch-equivalent refusal happened)}
// Floats print in their shortest round-trip form, like Python's repr.
#ifndef LRSCHED_CLIENT_TRACE_JSON_H_
#define LRSCHED_CLIENT_TRACE_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "scheduler/trace.h"

namespace lrsched {

// `rows` of `groups` values each, as a list of lists.
nlohmann::json RowsJson(const std::vector<double>& flat, size_t groups);

// A trace; `state_dict` is added when non-null.
nlohmann::json TraceJson(const Trace& t, const nlohmann::json& state_dict);

// The output for a configuration refused at construction (error_at_step -1).
nlohmann::json ConstructionErrorJson(const std::string& message);

// The input of `simulate`: a golden-line-shaped object. Reads steps (or `steps_override` when
// >= 0), metrics, epochs; returns the {"optimizer", "scheduler"} spec in *spec.
struct SimulateInput {
  nlohmann::json spec;
  int64_t steps = 0;
  std::vector<double> metrics;
  std::vector<double> epochs;
};
absl::StatusOr<SimulateInput> ReadSimulateInput(const nlohmann::json& in, int64_t steps_override);

// The most steps x param groups one `simulate` (or `plot` of a file) computes: lrsched-server's
// default --max_simulate_steps (server/main.cc), which the server cannot share (it links
// nothing of the client): keep the two equal. The local simulate applies it too, so a file that
// runs locally also runs with --server, and neither tries a trace it cannot hold.
inline constexpr int64_t kMaxSimulateValues = 1'000'000;

// OK, or INVALID_ARGUMENT naming "steps" when `in` would compute more than kMaxSimulateValues
// values. Counts the spec's param groups by building it (1 if it does not build: the caller
// reports that refusal). Cheap: nothing is stepped or allocated for the trace.
absl::Status CheckSimulateSize(const SimulateInput& in);

}  // namespace lrsched

#endif  // LRSCHED_CLIENT_TRACE_JSON_H_
