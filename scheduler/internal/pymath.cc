// Copyright lrsched authors.
//
// Float-only entry points into pynum, which holds the one transcription of CPython's numeric
// rules (shared with the expression language).
#include "scheduler/internal/pymath.h"

#include "scheduler/internal/pynum.h"

namespace lrsched::scheduler_internal {
namespace {

absl::Status Bin(PyBinOp op, double a, double b, double* out) {
  PyValue v = PyValue::Float(a);
  absl::Status s = PyBinary(op, v, PyValue::Float(b));
  if (s.ok()) *out = v.f;
  return s;
}

absl::Status Fn1(PyFn fn, double a, PyValue* v) {
  *v = PyValue::Float(a);
  return PyCall(fn, v, 1);
}

}  // namespace

absl::Status PyDivSlow(double a, double b, double* out) { return Bin(PyBinOp::kDiv, a, b, out); }
absl::Status PyMod(double a, double b, double* out) { return Bin(PyBinOp::kMod, a, b, out); }
absl::Status PyPow(double a, double b, double* out) { return Bin(PyBinOp::kPow, a, b, out); }

absl::Status PyCos(double a, double* out) {
  PyValue v;
  absl::Status s = Fn1(PyFn::kCos, a, &v);
  if (s.ok()) *out = v.f;
  return s;
}

absl::Status PyLog(double a, double* out) {
  PyValue v;
  absl::Status s = Fn1(PyFn::kLog, a, &v);
  if (s.ok()) *out = v.f;
  return s;
}

absl::Status PyFloorToInt(double a, int64_t* out) {
  PyValue v;
  absl::Status s = Fn1(PyFn::kFloor, a, &v);
  if (s.ok()) *out = v.i;
  return s;
}

}  // namespace lrsched::scheduler_internal
