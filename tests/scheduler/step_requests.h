// Copyright lrsched authors.
//
// StepRequest builders for the engine's tests: the project is C++17, without designated
// initializers, and a brace list must name every member (-Wmissing-field-initializers).
#ifndef LRSCHED_TESTS_STEP_REQUESTS_H_
#define LRSCHED_TESTS_STEP_REQUESTS_H_

#include <cstdint>

#include "scheduler/schedule.h"

namespace lrsched::test_support {

inline StepRequest Inc(int64_t n) {
  StepRequest r;
  r.increment = n;
  return r;
}
inline StepRequest Epoch(double e) {
  StepRequest r;
  r.epoch = e;
  return r;
}
inline StepRequest Metric(double m) {
  StepRequest r;
  r.metric = m;
  return r;
}
inline StepRequest MetricAtEpoch(double m, double e) {
  StepRequest r;
  r.metric = m;
  r.epoch = e;
  return r;
}

}  // namespace lrsched::test_support

#endif  // LRSCHED_TESTS_STEP_REQUESTS_H_
