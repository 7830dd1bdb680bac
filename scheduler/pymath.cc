// Copyright lrsched authors.
//
// Float-only entry points into pynum, which holds the one transcription of CPython's numeric
// rules (shared with the expression language).
#include "scheduler/pymath.h"

#include "scheduler/pynum.h"

namespace lrsched::py {
namespace {

absl::Status Bin(pynum::BinOp op, double a, double b, double* out) {
  pynum::Value v = pynum::Value::Float(a);
  absl::Status s = pynum::Binary(op, v, pynum::Value::Float(b));
  if (s.ok()) *out = v.f;
  return s;
}

absl::Status Fn1(pynum::Fn fn, double a, pynum::Value* v) {
  *v = pynum::Value::Float(a);
  return pynum::Call(fn, v, 1);
}

}  // namespace

absl::Status DivSlow(double a, double b, double* out) { return Bin(pynum::BinOp::kDiv, a, b, out); }
absl::Status Mod(double a, double b, double* out) { return Bin(pynum::BinOp::kMod, a, b, out); }
absl::Status Pow(double a, double b, double* out) { return Bin(pynum::BinOp::kPow, a, b, out); }

absl::Status Cos(double a, double* out) {
  pynum::Value v;
  absl::Status s = Fn1(pynum::Fn::kCos, a, &v);
  if (s.ok()) *out = v.f;
  return s;
}

absl::Status Log(double a, double* out) {
  pynum::Value v;
  absl::Status s = Fn1(pynum::Fn::kLog, a, &v);
  if (s.ok()) *out = v.f;
  return s;
}

absl::Status FloorToInt(double a, int64_t* out) {
  pynum::Value v;
  absl::Status s = Fn1(pynum::Fn::kFloor, a, &v);
  if (s.ok()) *out = v.i;
  return s;
}

}  // namespace lrsched::py
