// Copyright lrsched authors.
//
// Expr's public surface and its evaluator: a loop over the compiled instructions with a
// fixed-size operand stack on the C++ stack, so that Eval neither allocates nor recurses.
#include "scheduler/expr.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "scheduler/expr_internal.h"
#include "scheduler/pynum.h"

namespace lrsched {

struct Expr::Program {
  std::string source;
  expr_internal::Code code;
};

namespace {

using expr_internal::Code;
using expr_internal::Instr;
using expr_internal::Op;
using pynum::Value;

absl::StatusOr<double> Run(const Code& code, int64_t arg) {
  // Uninitialised on purpose: Compile proved max_stack <= kStackCapacity, and every slot is
  // written before it is read.
  Value stack[expr_internal::kStackCapacity];
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
        stack[sp++] = Value::Int(arg);
        break;
      case Op::kNeg:
        if (absl::Status s = pynum::Negate(stack[sp - 1]); !s.ok()) return s;
        break;
      case Op::kNot:
        stack[sp - 1] = Value::Int(pynum::Truthy(stack[sp - 1]) ? 0 : 1);
        break;
      case Op::kBinary:
        --sp;
        if (absl::Status s =
                pynum::Binary(static_cast<pynum::BinOp>(in.sub), stack[sp - 1], stack[sp]);
            !s.ok()) {
          return s;
        }
        break;
      case Op::kCompare:
        --sp;
        stack[sp - 1] = Value::Int(
            pynum::Compare(stack[sp - 1], static_cast<pynum::CmpOp>(in.sub), stack[sp]) ? 1 : 0);
        break;
      case Op::kCompareOrJump:
        --sp;
        if (!pynum::Compare(stack[sp - 1], static_cast<pynum::CmpOp>(in.sub), stack[sp])) {
          stack[sp - 1] = Value::Int(0);
          pc += in.a;
          continue;
        }
        stack[sp - 1] = stack[sp];  // the right operand is the next comparison's left one
        break;
      case Op::kJumpIfFalseOrPop:
      case Op::kJumpIfTrueOrPop:
        if (pynum::Truthy(stack[sp - 1]) == (in.op == Op::kJumpIfTrueOrPop)) {
          pc += in.a;
          continue;
        }
        --sp;
        break;
      case Op::kPopJumpIfFalse:
        if (!pynum::Truthy(stack[--sp])) {
          pc += in.a;
          continue;
        }
        break;
      case Op::kJump:
        pc += in.a;
        continue;
      case Op::kCall:
        sp -= in.a;
        if (absl::Status s = pynum::Call(static_cast<pynum::Fn>(in.sub), &stack[sp], in.a);
            !s.ok()) {
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
    return expr_internal::SyntaxError(
        kMaxSourceLength, absl::StrCat("expression longer than ", kMaxSourceLength, " characters (",
                                       source.size(), ")"));
  }
  auto program = std::make_shared<Program>();
  program->source = std::string(source);
  if (absl::Status s = expr_internal::CompileToCode(absl::string_view(source.data(), source.size()),
                                                    variables, &program->code);
      !s.ok()) {
    return s;
  }
  return Expr(std::move(program));
}

absl::StatusOr<double> Expr::Eval(int64_t arg) const { return Run(program_->code, arg); }

const std::string& Expr::source() const { return program_->source; }

int64_t Expr::cost() const { return static_cast<int64_t>(program_->code.instrs.size()); }

}  // namespace lrsched
