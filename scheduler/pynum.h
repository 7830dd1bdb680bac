// Copyright lrsched authors.
//
// pynum: CPython 3 numeric semantics for the values of an Expr (see expr.h), one operation at a
// time, so that a compiled lambda yields the bits Python's `eval` would.
//
// A Value is a Python int (held as int64; a result outside int64 is the error
// "OverflowError: integer overflow" where Python would grow the int) or a Python float (an
// IEEE double). bool is an int whose value is 0 or 1: every operation we support gives the
// same number for True as for 1, so it needs no tag of its own.
//
// Every operation works in place on caller-owned storage and returns an OK absl::Status
// without allocating; an error is INVALID_ARGUMENT whose message is Python's
// "ExceptionName: str(exception)", e.g. "ZeroDivisionError: float division by zero".
#ifndef LRSCHED_SCHEDULER_PYNUM_H_
#define LRSCHED_SCHEDULER_PYNUM_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lrsched::pynum {

// An aggregate without default member initializers on purpose: the evaluator keeps an
// uninitialised array of them and must not pay for clearing it on every call.
struct Value {
  bool is_float;
  int64_t i;  // meaningful when !is_float
  double f;   // meaningful when is_float

  static Value Int(int64_t v) { return Value{false, v, 0.0}; }
  static Value Float(double v) { return Value{true, 0, v}; }
  // float(v), as Python converts an int: correctly rounded.
  double AsDouble() const { return is_float ? f : static_cast<double>(i); }
};

// Python's bool(v): nonzero, so NaN is true.
inline bool Truthy(const Value& v) { return v.is_float ? v.f != 0.0 : v.i != 0; }

enum class CmpOp : uint8_t { kLt, kLe, kGt, kGe, kEq, kNe };

// a <op> b as Python compares them; an int and a float compare exactly, never by rounding the
// int to a double.
bool Compare(const Value& a, CmpOp op, const Value& b);

enum class BinOp : uint8_t { kAdd, kSub, kMul, kDiv, kMod, kPow };

// a = a <op> b: `/` is true division, `%` floored modulo, `**` int-exact for a non-negative
// int exponent and CPython's float_pow otherwise.
absl::Status Binary(BinOp op, Value& a, const Value& b);

// a = -a.
absl::Status Negate(Value& a);

// The callable names of the language: the builtins min max abs and the math functions.
enum class Fn : uint8_t {
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

struct FnInfo {
  absl::string_view name;
  Fn fn;
  int min_args;
  int max_args;  // -1: no upper bound
};

// The FnInfo named `name`, or nullptr.
const FnInfo* LookupFn(absl::string_view name);

// args[0] = fn(args[0], ..., args[nargs - 1]); nargs is within fn's arity (the compiler
// checks it).
absl::Status Call(Fn fn, Value* args, int nargs);

// math.pi and math.e.
inline constexpr double kPi = 0x1.921fb54442d18p+1;
inline constexpr double kE = 0x1.5bf0a8b145769p+1;

}  // namespace lrsched::pynum

#endif  // LRSCHED_SCHEDULER_PYNUM_H_
