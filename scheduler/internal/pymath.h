// Copyright lrsched authors.
//
// CPython's float arithmetic on doubles where it differs from plain C, for the schedulers'
// formulas: the operations that raise in Python (ZeroDivisionError, OverflowError, ValueError)
// return an error here, and `%` and `**` follow CPython's float_rem and float_pow, so torch's
// formulas give the same bits and the same failures. These are thin wrappers over pynum.h,
// which holds the one transcription of CPython's rules. Everything else (+ - * and
// comparisons) is plain IEEE double arithmetic, as in CPython. Each function is the Python
// operation its name gives after the Py prefix (PyPow is `**`), so that the schedulers' formulas
// show where Python's rules apply.
#ifndef LRSCHED_SCHEDULER_INTERNAL_PYMATH_H_
#define LRSCHED_SCHEDULER_INTERNAL_PYMATH_H_

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"

namespace lrsched::scheduler_internal {

// Results are written to *out; the Status is OK or INVALID_ARGUMENT naming Python's exception.
// None of these allocate on success.
absl::Status PyDivSlow(double a, double b, double* out);
inline absl::Status PyDiv(double a, double b, double* out) {  // a / b
  // Division is on every step's hot path; only b == 0 needs Python's rules (an error).
  if (b != 0.0) {
    *out = a / b;
    return absl::OkStatus();
  }
  return PyDivSlow(a, b, out);
}
absl::Status PyMod(double a, double b, double* out);  // a % b, floored
absl::Status PyPow(double a, double b, double* out);  // a ** b (float_pow)
absl::Status PyCos(double a, double* out);            // math.cos
absl::Status PyLog(double a, double* out);            // math.log
// Python's `int(x)` truncation and math.floor for finite doubles that fit in int64.
absl::Status PyFloorToInt(double a, int64_t* out);

// max(a, b) / min(a, b) as Python's builtins: the first argument wins unless the second
// compares strictly greater (smaller), which decides NaN handling.
inline double PyMax(double a, double b) { return b > a ? b : a; }
inline double PyMin(double a, double b) { return b < a ? b : a; }

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_PYMATH_H_
