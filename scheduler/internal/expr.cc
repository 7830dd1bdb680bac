// Copyright lrsched authors.
//
// Expr's public surface and its evaluator: a loop over the compiled instructions with a
// fixed-size operand stack on the C++ stack, so that Eval neither allocates nor recurses.
#include "scheduler/internal/expr.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "scheduler/internal/expr_internal.h"
#include "scheduler/internal/pynum.h"

namespace lrsched::scheduler_internal {

struct Expr::Program {
  std::string source;
  Code code;
};

namespace {

absl::StatusOr<double> Run(const Code& code, int64_t arg) {
  // Uninitialised on purpose: Compile proved max_stack <= kStackCapacity, and every slot is
  // written before it is read.
  PyValue stack[kStackCapacity];
  int sp = 0;
  const Instr* const instrs = code.instrs.data();
  const size_t n = code.instrs.size();
  size_t pc = 0;
  while (pc < n) {
    const Instr& in = instrs[pc];
    switch (in.op) {
      case Op::kConst:
        stack[sp++] = code.consts[in.a];
        break;
      case Op::kArg:
        stack[sp++] = PyValue::Int(arg);
        break;
      case Op::kNeg:
        if (absl::Status s = PyNegate(stack[sp - 1]); !s.ok()) return s;
        break;
      case Op::kNot:
        stack[sp - 1] = PyValue::Int(PyTruthy(stack[sp - 1]) ? 0 : 1);
        break;
      case Op::kBinary:
        --sp;
        if (absl::Status s = PyBinary(static_cast<PyBinOp>(in.sub), stack[sp - 1], stack[sp]);
            !s.ok()) {
          return s;
        }
        break;
      case Op::kCompare:
        --sp;
        stack[sp - 1] =
            PyValue::Int(PyCompare(stack[sp - 1], static_cast<PyCmpOp>(in.sub), stack[sp]) ? 1 : 0);
        break;
      case Op::kCompareOrJump:
        --sp;
        if (!PyCompare(stack[sp - 1], static_cast<PyCmpOp>(in.sub), stack[sp])) {
          stack[sp - 1] = PyValue::Int(0);
          pc += in.a;
          continue;
        }
        stack[sp - 1] = stack[sp];  // the right operand is the next comparison's left one
        break;
      case Op::kJumpIfFalseOrPop:
      case Op::kJumpIfTrueOrPop:
        if (PyTruthy(stack[sp - 1]) == (in.op == Op::kJumpIfTrueOrPop)) {
          pc += in.a;
          continue;
        }
        --sp;
        break;
      case Op::kPopJumpIfFalse:
        if (!PyTruthy(stack[--sp])) {
          pc += in.a;
          continue;
        }
        break;
      case Op::kJump:
        pc += in.a;
        continue;
      case Op::kCall:
        sp -= in.a;
        if (absl::Status s = PyCall(static_cast<PyFn>(in.sub), &stack[sp], in.a); !s.ok()) {
          return s;
        }
        ++sp;
        break;
    }
    ++pc;
  }
  return stack[0].AsDouble();
}

}  // namespace

absl::StatusOr<Expr> Expr::Compile(std::string_view source,
                                   const std::vector<std::string>& variables) {
  if (source.size() > kMaxSourceLength) {
    return SyntaxError(kMaxSourceLength, absl::StrCat("expression longer than ", kMaxSourceLength,
                                                      " characters (", source.size(), ")"));
  }
  auto program = std::make_shared<Program>();
  program->source = std::string(source);
  if (absl::Status s =
          CompileToCode(absl::string_view(source.data(), source.size()), variables, &program->code);
      !s.ok()) {
    return s;
  }
  return Expr(std::move(program));
}

absl::StatusOr<double> Expr::Eval(int64_t arg) const { return Run(program_->code, arg); }

const std::string& Expr::source() const { return program_->source; }

int64_t Expr::cost() const { return static_cast<int64_t>(program_->code.instrs.size()); }

}  // namespace lrsched::scheduler_internal
