// Copyright lrsched authors.
//
// The operations follow CPython 3.11's Objects/longobject.c, Objects/floatobject.c,
// Modules/mathmodule.c and Python/bltinmodule.c branch for branch; comments name the CPython
// function mirrored. Nothing here may be reordered or fused: the build uses -ffp-contract=off.
#include "scheduler/internal/pynum.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"

namespace lrsched::scheduler_internal {
namespace {

__extension__ typedef unsigned __int128 Uint128;

constexpr double kTwo63 = 9223372036854775808.0;  // 2**63, exact

absl::Status PyError(absl::string_view type, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(type, ": ", message));
}
absl::Status IntOverflow() { return PyError("OverflowError", "integer overflow"); }
absl::Status MathDomain() { return PyError("ValueError", "math domain error"); }
absl::Status MathRange() { return PyError("OverflowError", "math range error"); }

// Three-way exact comparison of an int with a float (CPython's float_richcompare):
// -1, 0 or 1 as i <, == or > d; kUnordered when d is NaN.
constexpr int kUnordered = 2;
int CompareIntDouble(int64_t i, double d) {
  if (std::isnan(d)) return kUnordered;
  if (d >= kTwo63) return -1;
  if (d < -kTwo63) return 1;
  // |d| < 2**63 here, so its integral part is an exact int64 and the fraction is exact too.
  const double t = std::trunc(d);
  const int64_t ti = static_cast<int64_t>(t);
  if (i != ti) return i < ti ? -1 : 1;
  const double frac = d - t;
  return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

bool Holds(int three_way, PyCmpOp op) {
  if (three_way == kUnordered) return op == PyCmpOp::kNe;
  switch (op) {
    case PyCmpOp::kLt:
      return three_way < 0;
    case PyCmpOp::kLe:
      return three_way <= 0;
    case PyCmpOp::kGt:
      return three_way > 0;
    case PyCmpOp::kGe:
      return three_way >= 0;
    case PyCmpOp::kEq:
      return three_way == 0;
    case PyCmpOp::kNe:
      return three_way != 0;
  }
  return false;
}

// int / int, correctly rounded as CPython's long_true_divide guarantees. Converting both
// operands to double first would round twice once an operand exceeds 2**53.
double IntTrueDivide(int64_t a, int64_t b) {
  const bool negative = (a < 0) != (b < 0);
  const uint64_t ua = a < 0 ? 0 - static_cast<uint64_t>(a) : static_cast<uint64_t>(a);
  const uint64_t ub = b < 0 ? 0 - static_cast<uint64_t>(b) : static_cast<uint64_t>(b);
  constexpr uint64_t kExact = uint64_t{1} << 53;
  if (ua <= kExact && ub <= kExact) return static_cast<double>(a) / static_cast<double>(b);
  if (ua == 0) return negative ? -0.0 : 0.0;
  // Scale the dividend so its top bit is bit 126: the quotient then has at least 63 bits, and
  // folding a nonzero remainder into its lowest bit (far below the rounding position) makes the
  // one int128 -> double conversion round exactly as the true quotient would.
  const int shift = 127 - (64 - __builtin_clzll(ua));
  const Uint128 n = static_cast<Uint128>(ua) << shift;
  Uint128 q = n / ub;
  if (n % ub != 0) q |= 1;
  const double d = std::ldexp(static_cast<double>(q), -shift);  // exact: no under/overflow
  return negative ? -d : d;
}

// A negative float to a non-integer power: Python hands it to complex_pow, which raises
// OverflowError if the complex result overflows and otherwise returns a complex number, which a
// learning rate cannot be, so that is an error here too.
absl::Status ComplexPowError(double iv, double iw) {
  // _Py_c_pow for a = iv + 0j, b = iw + 0j: |a| ** iw at angle atan2(0.0, iv) * iw.
  errno = 0;
  const double len = std::pow(std::fabs(iv), iw);
  int err = errno;
  const double phase = std::atan2(0.0, iv) * iw;
  const double re = len * std::cos(phase);
  const double im = len * std::sin(phase);
  // _Py_ADJUST_ERANGE2.
  if (err == 0 && (std::isinf(re) || std::isinf(im))) {
    err = ERANGE;
  } else if (err == ERANGE && re == 0.0 && im == 0.0) {
    err = 0;
  }
  if (err == ERANGE) return PyError("OverflowError", "complex exponentiation");
  return PyError("ValueError", "complex result");
}

// CPython's float_pow.
absl::Status FloatPow(double iv, double iw, double* out) {
  if (iw == 0) {
    *out = 1.0;
    return absl::OkStatus();
  }
  if (std::isnan(iv)) {
    *out = iv;
    return absl::OkStatus();
  }
  if (std::isnan(iw)) {
    *out = iv == 1.0 ? 1.0 : iw;
    return absl::OkStatus();
  }
  const auto is_odd_integer = [](double x) { return std::fmod(std::fabs(x), 2.0) == 1.0; };
  if (std::isinf(iw)) {
    iv = std::fabs(iv);
    if (iv == 1.0) {
      *out = 1.0;
    } else if ((iw > 0.0) == (iv > 1.0)) {
      *out = std::fabs(iw);
    } else {
      *out = 0.0;
    }
    return absl::OkStatus();
  }
  if (std::isinf(iv)) {
    const bool odd = is_odd_integer(iw);
    if (iw > 0.0) {
      *out = odd ? iv : std::fabs(iv);
    } else {
      *out = odd ? std::copysign(0.0, iv) : 0.0;
    }
    return absl::OkStatus();
  }
  if (iv == 0.0) {
    if (iw < 0.0) {
      return PyError("ZeroDivisionError", "0.0 cannot be raised to a negative power");
    }
    *out = is_odd_integer(iw) ? iv : 0.0;
    return absl::OkStatus();
  }
  bool negate_result = false;
  if (iv < 0.0) {
    if (iw != std::floor(iw)) return ComplexPowError(iv, iw);
    iv = -iv;
    negate_result = is_odd_integer(iw);
  }
  if (iv == 1.0) {
    *out = negate_result ? -1.0 : 1.0;
    return absl::OkStatus();
  }
  errno = 0;
  double ix = std::pow(iv, iw);
  // _Py_ADJUST_ERANGE1: an infinite result is an overflow; an underflow to zero is not.
  if (errno == 0) {
    if (std::isinf(ix)) errno = ERANGE;
  } else if (errno == ERANGE && ix == 0.0) {
    errno = 0;
  }
  if (negate_result) ix = -ix;
  if (errno == ERANGE) return PyError("OverflowError", "(34, 'Numerical result out of range')");
  if (errno != 0) return PyError("ValueError", "(33, 'Numerical argument out of domain')");
  *out = ix;
  return absl::OkStatus();
}

absl::Status IntPow(int64_t base, int64_t exponent, int64_t* out) {
  // Square-and-multiply. Once base*base overflows with exponent bits left, the result is a
  // multiple of that square, so the overflow is genuine and not an artefact of the order.
  int64_t result = 1;
  while (true) {
    if ((exponent & 1) != 0 && __builtin_mul_overflow(result, base, &result)) {
      return IntOverflow();
    }
    exponent >>= 1;
    if (exponent == 0) break;
    if (__builtin_mul_overflow(base, base, &base)) return IntOverflow();
  }
  *out = result;
  return absl::OkStatus();
}

// CPython's math_1: apply a libm function and turn NaN/inf/errno into Python's exceptions.
absl::Status Math1(double (*func)(double), bool can_overflow, PyValue& v) {
  const double x = v.AsDouble();
  errno = 0;
  const double r = func(x);
  if (std::isnan(r) && !std::isnan(x)) return MathDomain();
  if (std::isinf(r) && std::isfinite(x)) return can_overflow ? MathRange() : MathDomain();
  if (std::isfinite(r) && errno != 0) {
    if (errno == EDOM) return MathDomain();
    // is_error: ERANGE on a small result is an underflow, which Python ignores.
    if (errno != ERANGE || std::fabs(r) >= 1.5) return MathRange();
  }
  v = PyValue::Float(r);
  return absl::OkStatus();
}

// CPython's m_log.
double MLog(double x) {
  if (std::isfinite(x)) {
    if (x > 0.0) return std::log(x);
    errno = EDOM;
    return x == 0.0 ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::quiet_NaN();
  }
  if (std::isnan(x) || x > 0.0) return x;
  errno = EDOM;
  return std::numeric_limits<double>::quiet_NaN();
}

// CPython's loghelper: ints bypass math_1's checks (a positive int has a finite log).
absl::Status LogHelper(PyValue& v) {
  if (!v.is_float) {
    if (v.i <= 0) return MathDomain();
    v = PyValue::Float(MLog(static_cast<double>(v.i)));
    return absl::OkStatus();
  }
  return Math1(MLog, false, v);
}

// math.floor / math.ceil of a float: PyLong_FromDouble, then our int64 bound.
absl::Status ToInt(double r, PyValue& v) {
  if (std::isinf(r)) return PyError("OverflowError", "cannot convert float infinity to integer");
  if (std::isnan(r)) return PyError("ValueError", "cannot convert float NaN to integer");
  if (r < -kTwo63 || r >= kTwo63) return IntOverflow();
  v = PyValue::Int(static_cast<int64_t>(r));
  return absl::OkStatus();
}

double Sin(double x) { return std::sin(x); }
double Cos(double x) { return std::cos(x); }
double Tan(double x) { return std::tan(x); }
double Tanh(double x) { return std::tanh(x); }
double Exp(double x) { return std::exp(x); }
double Sqrt(double x) { return std::sqrt(x); }

constexpr PyFnInfo kFunctions[] = {
    {"min", PyFn::kMin, 2, -1},    {"max", PyFn::kMax, 2, -1},  {"abs", PyFn::kAbs, 1, 1},
    {"floor", PyFn::kFloor, 1, 1}, {"ceil", PyFn::kCeil, 1, 1}, {"exp", PyFn::kExp, 1, 1},
    {"log", PyFn::kLog, 1, 2},     {"sqrt", PyFn::kSqrt, 1, 1}, {"sin", PyFn::kSin, 1, 1},
    {"cos", PyFn::kCos, 1, 1},     {"tan", PyFn::kTan, 1, 1},   {"tanh", PyFn::kTanh, 1, 1},
};

}  // namespace

bool PyCompare(const PyValue& a, PyCmpOp op, const PyValue& b) {
  if (!a.is_float && !b.is_float) return Holds(a.i < b.i ? -1 : (a.i > b.i ? 1 : 0), op);
  if (a.is_float && b.is_float) {
    switch (op) {
      case PyCmpOp::kLt:
        return a.f < b.f;
      case PyCmpOp::kLe:
        return a.f <= b.f;
      case PyCmpOp::kGt:
        return a.f > b.f;
      case PyCmpOp::kGe:
        return a.f >= b.f;
      case PyCmpOp::kEq:
        return a.f == b.f;
      case PyCmpOp::kNe:
        return a.f != b.f;
    }
    return false;
  }
  if (!a.is_float) return Holds(CompareIntDouble(a.i, b.f), op);
  const int reversed = CompareIntDouble(b.i, a.f);
  return Holds(reversed == kUnordered ? kUnordered : -reversed, op);
}

absl::Status PyBinary(PyBinOp op, PyValue& a, const PyValue& b) {
  if (!a.is_float && !b.is_float) {
    int64_t r = 0;
    switch (op) {
      case PyBinOp::kAdd:
        if (__builtin_add_overflow(a.i, b.i, &r)) return IntOverflow();
        break;
      case PyBinOp::kSub:
        if (__builtin_sub_overflow(a.i, b.i, &r)) return IntOverflow();
        break;
      case PyBinOp::kMul:
        if (__builtin_mul_overflow(a.i, b.i, &r)) return IntOverflow();
        break;
      case PyBinOp::kDiv:
        if (b.i == 0) return PyError("ZeroDivisionError", "division by zero");
        a = PyValue::Float(IntTrueDivide(a.i, b.i));
        return absl::OkStatus();
      case PyBinOp::kMod:
        if (b.i == 0) return PyError("ZeroDivisionError", "integer modulo by zero");
        if (b.i == -1) break;  // r = 0; and INT64_MIN % -1 is undefined in C++
        r = a.i % b.i;
        if (r != 0 && ((r < 0) != (b.i < 0))) r += b.i;  // floor, not truncate
        break;
      case PyBinOp::kPow:
        if (b.i < 0) break;  // long_pow hands a negative exponent to float_pow, below
        if (absl::Status s = IntPow(a.i, b.i, &r); !s.ok()) return s;
        break;
    }
    if (op != PyBinOp::kPow || b.i >= 0) {
      a = PyValue::Int(r);
      return absl::OkStatus();
    }
  }
  const double x = a.AsDouble();
  const double y = b.AsDouble();
  double r = 0.0;
  switch (op) {
    case PyBinOp::kAdd:
      r = x + y;
      break;
    case PyBinOp::kSub:
      r = x - y;
      break;
    case PyBinOp::kMul:
      r = x * y;
      break;
    case PyBinOp::kDiv:
      if (y == 0.0) return PyError("ZeroDivisionError", "float division by zero");
      r = x / y;
      break;
    case PyBinOp::kMod:  // float_rem
      if (y == 0.0) return PyError("ZeroDivisionError", "float modulo");
      r = std::fmod(x, y);
      if (r != 0.0) {
        if ((y < 0) != (r < 0)) r += y;
      } else {
        r = std::copysign(0.0, y);
      }
      break;
    case PyBinOp::kPow:
      if (absl::Status s = FloatPow(x, y, &r); !s.ok()) return s;
      break;
  }
  a = PyValue::Float(r);
  return absl::OkStatus();
}

absl::Status PyNegate(PyValue& a) {
  if (a.is_float) {
    a.f = -a.f;
  } else {
    if (a.i == std::numeric_limits<int64_t>::min()) return IntOverflow();
    a.i = -a.i;
  }
  return absl::OkStatus();
}

const PyFnInfo* LookupPyFn(absl::string_view name) {
  for (const PyFnInfo& info : kFunctions) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

absl::Status PyCall(PyFn fn, PyValue* args, int nargs) {
  PyValue& v = args[0];
  switch (fn) {
    case PyFn::kMin:
    case PyFn::kMax: {
      // builtin min_max: an item replaces the best so far only if strictly better, so the first
      // of equal items wins and NaN behaves exactly as in Python.
      const PyCmpOp better = fn == PyFn::kMin ? PyCmpOp::kLt : PyCmpOp::kGt;
      for (int k = 1; k < nargs; ++k) {
        if (PyCompare(args[k], better, v)) v = args[k];
      }
      return absl::OkStatus();
    }
    case PyFn::kAbs:
      if (v.is_float) {
        v.f = std::fabs(v.f);
      } else if (v.i < 0) {
        return PyNegate(v);
      }
      return absl::OkStatus();
    case PyFn::kFloor:
      return v.is_float ? ToInt(std::floor(v.f), v) : absl::OkStatus();
    case PyFn::kCeil:
      return v.is_float ? ToInt(std::ceil(v.f), v) : absl::OkStatus();
    case PyFn::kExp:
      return Math1(Exp, true, v);
    case PyFn::kSqrt:
      return Math1(Sqrt, false, v);
    case PyFn::kSin:
      return Math1(Sin, false, v);
    case PyFn::kCos:
      return Math1(Cos, false, v);
    case PyFn::kTan:
      return Math1(Tan, false, v);
    case PyFn::kTanh:
      return Math1(Tanh, false, v);
    case PyFn::kLog: {
      // math_log_impl: log(x) / log(base), the division being Python's float true division.
      if (absl::Status s = LogHelper(v); !s.ok()) return s;
      if (nargs == 1) return absl::OkStatus();
      if (absl::Status s = LogHelper(args[1]); !s.ok()) return s;
      return PyBinary(PyBinOp::kDiv, v, args[1]);
    }
  }
  return absl::InternalError("unknown function");
}

}  // namespace lrsched::scheduler_internal
