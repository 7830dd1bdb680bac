// Copyright lrsched authors.
//
// pynum: CPython 3 numeric semantics for the values of an Expr (see expr.h), one operation at a
// time, so that a compiled lambda yields the bits Python's `eval` would. Internal: the
// expression evaluator (expr.cc) and pymath.h use it; its names carry a Py prefix.
//
// A PyValue is a Python int (held as int64; a result outside int64 is the error
// "OverflowError: integer overflow" where Python would grow the int) or a Python float (an
// IEEE double). bool is an int whose value is 0 or 1: every operation we support gives the
// same number for True as for 1, so it needs no tag of its own.
//
// Every operation works in place on caller-owned storage and returns an OK absl::Status
// without allocating; an error is INVALID_ARGUMENT whose message is Python's
// "ExceptionName: str(exception)", e.g. "ZeroDivisionError: float division by zero".
#ifndef LRSCHED_SCHEDULER_INTERNAL_PYNUM_H_
#define LRSCHED_SCHEDULER_INTERNAL_PYNUM_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lrsched::scheduler_internal {

// An aggregate without default member initializers on purpose: the evaluator keeps an
// uninitialised array of them and must not pay for clearing it on every call.
struct PyValue {
  bool is_float;
  int64_t i;  // meaningful when !is_float
  double f;   // meaningful when is_float

  static PyValue Int(int64_t v) { return PyValue{false, v, 0.0}; }
  static PyValue Float(double v) { return PyValue{true, 0, v}; }
  // float(v), as Python converts an int: correctly rounded.
  double AsDouble() const { return is_float ? f : static_cast<double>(i); }
};

// Python's bool(v): nonzero, so NaN is true.
inline bool PyTruthy(const PyValue& v) { return v.is_float ? v.f != 0.0 : v.i != 0; }

enum class PyCmpOp : uint8_t { kLt, kLe, kGt, kGe, kEq, kNe };

// a <op> b as Python compares them; an int and a float compare exactly, never by rounding the
// int to a double.
bool PyCompare(const PyValue& a, PyCmpOp op, const PyValue& b);

enum class PyBinOp : uint8_t { kAdd, kSub, kMul, kDiv, kMod, kPow };

// a = a <op> b: `/` is true division, `%` floored modulo, `**` int-exact for a non-negative
// int exponent and CPython's float_pow otherwise.
absl::Status PyBinary(PyBinOp op, PyValue& a, const PyValue& b);

// a = -a.
absl::Status PyNegate(PyValue& a);

// The callable names of the language: the builtins min max abs and the math functions.
enum class PyFn : uint8_t {
  kMin,
  kMax,
  kAbs,
  kFloor,
  kCeil,
  kExp,
  kLog,
  kSqrt,
  kSin,
  kCos,
  kTan,
  kTanh
};

struct PyFnInfo {
  absl::string_view name;
  PyFn fn;
  int min_args;
  int max_args;  // -1: no upper bound
};

// The PyFnInfo named `name`, or nullptr.
const PyFnInfo* LookupPyFn(absl::string_view name);

// args[0] = fn(args[0], ..., args[nargs - 1]); nargs is within fn's arity (the compiler
// checks it).
absl::Status PyCall(PyFn fn, PyValue* args, int nargs);

// math.pi and math.e.
inline constexpr double kPi = 0x1.921fb54442d18p+1;
inline constexpr double kE = 0x1.5bf0a8b145769p+1;

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_PYNUM_H_
