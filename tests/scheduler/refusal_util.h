// Copyright lrsched authors.
//
// The checks every family's tests make of a refusal: INVALID_ARGUMENT whose message names what
// was wrong, and, for a refused step, a schedule left exactly as it was (its whole exported
// state compared).
#ifndef LRSCHED_TESTS_REFUSAL_UTIL_H_
#define LRSCHED_TESTS_REFUSAL_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "scheduler/schedule.h"

namespace lrsched::test_support {

// `s` is INVALID_ARGUMENT and its message contains `needle`.
inline void ExpectInvalidArgumentNaming(const absl::Status& s, const std::string& needle) {
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find(needle), std::string::npos)
      << "'" << s.message() << "' lacks '" << needle << "'";
}

// Schedule::Create(spec) is refused naming `needle`.
inline void ExpectCreateRefused(const nlohmann::json& spec, const std::string& needle) {
  auto s = Schedule::Create(spec);
  ASSERT_FALSE(s.ok()) << spec.dump() << ": accepted";
  ExpectInvalidArgumentNaming(s.status(), needle);
}

// s.Step(request) is refused naming `needle`, and changes nothing.
inline void ExpectStepRefusedUnchanged(Schedule& s, const StepRequest& request,
                                       const std::string& needle) {
  nlohmann::json before = s.ExportState();
  ExpectInvalidArgumentNaming(s.Step(request), needle);
  EXPECT_EQ(s.ExportState(), before);
}

}  // namespace lrsched::test_support

#endif  // LRSCHED_TESTS_REFUSAL_UTIL_H_
