// Copyright lrsched authors.
//
// The fuzzing entry points (see fuzz_entry.h). Invariants checked are only those the headers
// promise (expr.h, schedule.h), so that a failed check is a bug, not a guess.
#include "tests/fuzz/fuzz_entry.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "scheduler/internal/expr.h"
#include "scheduler/schedule.h"

namespace lrsched::fuzz {
namespace {

using nlohmann::json;
using scheduler_internal::Expr;

constexpr int kSteps = 12;

std::string_view Text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The i-th step of a run: plain, with a metric (ReduceLROnPlateau needs one), or step(epoch),
// chosen from a byte of the input so the fuzzer can steer it.
StepRequest RequestFor(const Schedule& s, int i, uint8_t salt) {
  StepRequest r;
  if (!s.deterministic()) r.metric = 1.0 / (1 + ((i + salt) % 5));
  if ((salt >> (i % 8)) & 1 && i % 3 == 2) r.epoch = i * 0.5 + (salt % 7);
  return r;
}

void CheckFinite(const Schedule& s) {
  for (const ParamGroup& g : s.param_groups()) FUZZ_CHECK(std::isfinite(g.lr));
}

// Steps `a` and `b` alike; they must agree on success and, bit for bit, on every lr.
void StepTogether(Schedule& a, Schedule& b, uint8_t salt) {
  for (int i = 0; i < 3; ++i) {
    StepRequest r = RequestFor(a, i, salt);
    bool ok_a = a.Step(r).ok();
    bool ok_b = b.Step(r).ok();
    FUZZ_CHECK(ok_a == ok_b);
    FUZZ_CHECK(a.param_groups().size() == b.param_groups().size());
    for (size_t g = 0; g < a.param_groups().size(); ++g) {
      FUZZ_CHECK(SameBits(a.param_groups()[g].lr, b.param_groups()[g].lr));
    }
  }
}

// Steps a loaded schedule, then checks that what it exports serializes and loads again.
void Exercise(Schedule& s, uint8_t salt) {
  CheckFinite(s);
  for (int i = 0; i < kSteps; ++i) {
    std::vector<double> before;
    for (const ParamGroup& g : s.param_groups()) before.push_back(g.lr);
    if (!s.Step(RequestFor(s, i, salt)).ok()) {
      // A refused step leaves the schedule exactly as it was.
      for (size_t g = 0; g < before.size(); ++g) {
        FUZZ_CHECK(SameBits(before[g], s.param_groups()[g].lr));
      }
    }
    CheckFinite(s);
  }
  json state = s.ExportState();
  std::string text = state.dump();  // throws on invalid UTF-8: the store must never see that
  auto reparsed = ParseJson(text, "state");
  FUZZ_CHECK(reparsed.ok());
  auto imported = Schedule::ImportState(*reparsed);
  if (!imported.ok()) {
    std::fprintf(stderr, "re-import refused: %s\nstate: %s\n",
                 std::string(imported.status().message()).c_str(), text.c_str());
  }
  FUZZ_CHECK(imported.ok());
  auto restored = Schedule::Restore(s.spec(), s.ParamGroupsJson(), s.StateDict());
  FUZZ_CHECK(restored.ok());
  std::unique_ptr<Schedule> clone = s.Clone();
  StepTogether(*clone, **imported, salt);
  StepTogether(s, **restored, salt);
}

}  // namespace

void FuzzExpr(const uint8_t* data, size_t size) {
  static const std::vector<std::string> kVars = {"epoch", "step", "x"};
  static const int64_t kArgs[] = {
      std::numeric_limits<int64_t>::min(), -1000000007, -3, -1, 0, 1, 2, 7, 1000000000000,
      std::numeric_limits<int64_t>::max()};
  auto e = Expr::Compile(Text(data, size), kVars);
  if (!e.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(e.status()));
    return;
  }
  for (int64_t a : kArgs) {
    auto v = e->Eval(a);
    if (!v.ok()) FUZZ_CHECK(absl::IsInvalidArgument(v.status()));
  }
}

void FuzzSpec(const uint8_t* data, size_t size) {
  auto spec = ParseJson(Text(data, size), "spec");
  if (!spec.ok()) return;
  auto s = Schedule::Create(*spec);
  if (!s.ok()) return;
  Exercise(**s, size ? data[size - 1] : 0);
}

void FuzzState(const uint8_t* data, size_t size) {
  auto state = ParseJson(Text(data, size), "state");
  if (!state.ok()) return;
  const uint8_t salt = size ? data[size - 1] : 0;
  auto s = Schedule::ImportState(*state);
  if (s.ok()) Exercise(**s, salt);
  // The torch-checkpoint route: the same parts, without lrsched's format/version envelope.
  if (!state->is_object()) return;
  auto part = [&](const char* key) {
    auto it = state->find(key);
    return it == state->end() ? json() : *it;
  };
  auto spec_it = state->find("spec");
  if (spec_it == state->end()) return;
  auto r = Schedule::Restore(*spec_it, part("param_groups"), part("state_dict"));
  if (r.ok()) Exercise(**r, salt);
}

}  // namespace lrsched::fuzz
