// Copyright lrsched authors.
#include "scheduler/pymath.h"

#include <cerrno>
#include <cfenv>
#include <limits>

namespace lrsched::py {

absl::Status Div(double a, double b, double* out) {
  if (b == 0.0) return absl::InvalidArgumentError("ZeroDivisionError: float division by zero");
  *out = a / b;
  return absl::OkStatus();
}

absl::Status Mod(double a, double b, double* out) {
  if (b == 0.0) return absl::InvalidArgumentError("ZeroDivisionError: float modulo");
  double mod = std::fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  *out = mod;
  return absl::OkStatus();
}

// A transcription of CPython 3.11's float_pow (Objects/floatobject.c), which decides the special
// cases itself before calling libm's pow().
absl::Status Pow(double iv, double iw, double* out) {
  if (iw == 0) {
    *out = 1.0;
    return absl::OkStatus();
  }
  if (std::isnan(iv)) {
    *out = iw == 1.0 ? iv : NAN;
    return absl::OkStatus();
  }
  if (std::isnan(iw)) {
    *out = iv == 1.0 ? 1.0 : iw;
    return absl::OkStatus();
  }
  if (std::isinf(iw)) {
    iv = std::fabs(iv);
    if (iv == 1.0) *out = 1.0;
    else if ((iw > 0.0) == (iv > 1.0)) *out = std::fabs(iw);
    else *out = 0.0;
    return absl::OkStatus();
  }
  if (std::isinf(iv)) {
    bool iw_is_odd = std::fmod(std::fabs(iw), 2.0) == 1.0;
    if (iw > 0.0) *out = iw_is_odd ? iv : std::fabs(iv);
    else *out = iw_is_odd ? std::copysign(0.0, iv) : 0.0;
    return absl::OkStatus();
  }
  if (iv == 0.0) {
    bool iw_is_odd = std::fmod(std::fabs(iw), 2.0) == 1.0;
    if (iw < 0.0) {
      return absl::InvalidArgumentError(
          "ZeroDivisionError: 0.0 cannot be raised to a negative power");
    }
    *out = iw_is_odd ? iv : 0.0;
    return absl::OkStatus();
  }
  bool negate_result = false;
  if (iv < 0.0) {
    if (iw != std::floor(iw)) {
      // Python 3 returns a complex number here; no learning rate can be complex.
      return absl::InvalidArgumentError(
          "ValueError: a negative number raised to a fractional power is complex");
    }
    iv = -iv;
    negate_result = std::fmod(std::fabs(iw), 2.0) == 1.0;
  }
  if (iv == 1.0) {
    *out = negate_result ? -1.0 : 1.0;
    return absl::OkStatus();
  }
  errno = 0;
  double ix = std::pow(iv, iw);
  if (std::isinf(ix)) {
    return absl::InvalidArgumentError(
        "OverflowError: (34, 'Numerical result out of range')");
  }
  // Underflow to zero is not an error in CPython (it clears ERANGE for tiny results).
  *out = negate_result ? -ix : ix;
  return absl::OkStatus();
}

absl::Status Cos(double a, double* out) {
  if (std::isinf(a)) return absl::InvalidArgumentError("ValueError: math domain error");
  *out = std::cos(a);
  return absl::OkStatus();
}

absl::Status Log(double a, double* out) {
  if (!(a > 0.0) || std::isinf(a)) {
    if (std::isinf(a) && a > 0) {
      *out = a;
      return absl::OkStatus();
    }
    if (std::isnan(a)) {
      *out = a;
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError("ValueError: math domain error");
  }
  *out = std::log(a);
  return absl::OkStatus();
}

absl::Status FloorToInt(double a, int64_t* out) {
  if (std::isnan(a)) {
    return absl::InvalidArgumentError("ValueError: cannot convert float NaN to integer");
  }
  double f = std::floor(a);
  // 2^63 is exactly representable; anything at or beyond it does not fit in int64.
  if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0)) {
    return absl::InvalidArgumentError("OverflowError: integer out of range");
  }
  *out = static_cast<int64_t>(f);
  return absl::OkStatus();
}

}  // namespace lrsched::py
