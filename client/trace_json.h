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
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "scheduler/trace.h"

namespace lrsched {

// Writes the trace's JSON document and a newline to `out`, streaming: the text goes out in
// chunks of at most ~64 KiB, with no tree and no whole-document string (a 1M-value trace is
// ~28 MB of text). Members in sorted order, as nlohmann's dump of the same object would give:
// "error", "error_at_step" (after a refused step), "lr", "momentum" (where has_momentum),
// "state_dict" (`state_dict`, when not null and no step was refused). Numbers by
// json_text::AppendDouble (Python's repr). Returns DATA_LOSS when `out` fails (e.g. a full
// disk or a closed pipe).
absl::Status WriteTraceJson(const Trace& t, const nlohmann::json& state_dict, std::ostream& out);

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
