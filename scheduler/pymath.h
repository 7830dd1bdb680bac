// Copyright lrsched authors.
//
// CPython's float arithmetic on doubles where it differs from plain C, for the schedulers'
// formulas: the operations that raise in Python (ZeroDivisionError, OverflowError, ValueError)
// return an error here, and `%` and `**` follow CPython's float_rem and float_pow, so torch's
// formulas give the same bits and the same failures. These are thin wrappers over pynum.h,
// which holds the one transcription of CPython's rules. Everything else (+ - * and
// comparisons) is plain IEEE double arithmetic, as in CPython.
#ifndef LRSCHED_SCHEDULER_PYMATH_H_
#define LRSCHED_SCHEDULER_PYMATH_H_

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"

namespace lrsched::py {

// Results are written to *out; the Status is OK or INVALID_ARGUMENT naming Python's exception.
// None of these allocate on success.
absl::Status DivSlow(double a, double b, double* out);
inline absl::Status Div(double a, double b, double* out) {  // a / b
  // Division is on every step's hot path; only b == 0 needs Python's rules (an error).
  if (b != 0.0) {
    *out = a / b;
    return absl::OkStatus();
  }
  return DivSlow(a, b, out);
}
absl::Status Mod(double a, double b, double* out);  // a % b, floored
absl::Status Pow(double a, double b, double* out);  // a ** b (float_pow)
absl::Status Cos(double a, double* out);            // math.cos
absl::Status Log(double a, double* out);            // math.log
// Python's `int(x)` truncation and math.floor for finite doubles that fit in int64.
absl::Status FloorToInt(double a, int64_t* out);

// max(a, b) / min(a, b) as Python's builtins: the first argument wins unless the second
// compares strictly greater (smaller), which decides NaN handling.
inline double Max(double a, double b) { return b > a ? b : a; }
inline double Min(double a, double b) { return b < a ? b : a; }

}  // namespace lrsched::py

#endif  // LRSCHED_SCHEDULER_PYMATH_H_
