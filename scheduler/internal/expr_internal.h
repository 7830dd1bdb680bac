// Copyright lrsched authors.
//
// Internals of Expr (expr.h) shared by its compiler (expr_lex.cc, expr_parse.cc) and its
// evaluator (expr.cc); nothing else includes it (Expr's users need only expr.h).
//
// An expression compiles to Code: a flat array of instructions for a stack machine, run once
// front to back. Every jump goes forward, so evaluation takes at most instrs.size() steps, and
// the operand stack never holds more than max_stack values (at most one per operand token,
// hence at most kStackCapacity), so the evaluator can use a fixed array and never allocate.
#ifndef LRSCHED_SCHEDULER_INTERNAL_EXPR_INTERNAL_H_
#define LRSCHED_SCHEDULER_INTERNAL_EXPR_INTERNAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "scheduler/internal/expr.h"
#include "scheduler/internal/pynum.h"

namespace lrsched::scheduler_internal {

// Operands are separated by at least one character, so a source of kMaxSourceLength bytes
// holds at most this many operand tokens, which bounds the operand stack.
inline constexpr int kStackCapacity = static_cast<int>(Expr::kMaxSourceLength / 2 + 1);

enum class Op : uint8_t {
  kConst,             // push consts[a]
  kArg,               // push the argument
  kNeg,               // top = -top
  kNot,               // top = not top
  kBinary,            // pop b; top = top <sub> b            (sub: PyBinOp)
  kCompare,           // pop b, a; push a <sub> b            (sub: PyCmpOp)
  kCompareOrJump,     // pop b, a; if a <sub> b: push b, else push False and jump (chains)
  kJumpIfFalseOrPop,  // `and`: falsy top stays and jumps; otherwise it is popped
  kJumpIfTrueOrPop,   // `or`
  kPopJumpIfFalse,    // pop c; jump if falsy (conditional expressions)
  kJump,
  kCall,  // top a values = fn(them), one value  (sub: PyFn, a: count)
};

// A jump's target is the index of the jumping instruction plus `a` (always > 0). Relative
// offsets let the compiler move a block of code without patching the jumps inside it.
struct Instr {
  Op op;
  uint8_t sub;
  int32_t a;
};

struct Code {
  std::vector<Instr> instrs;
  std::vector<PyValue> consts;
  int max_stack = 0;
};

enum class Tok : uint8_t { kNumber, kName, kOp, kNewline, kEnd, kError };

// A token of the source; `pos` is its byte offset (column pos + 1 in messages).
struct Token {
  Tok kind;
  uint32_t pos;
  uint32_t len;
  PyValue number;  // kNumber only

  absl::string_view text(absl::string_view source) const { return source.substr(pos, len); }
};

// INVALID_ARGUMENT "column <pos + 1>: <message>".
absl::Status SyntaxError(size_t pos, absl::string_view message);

// Splits `source` into tokens as Python's tokenizer would (numbers, names, operators, implicit
// line joining inside parentheses, comments, backslash continuations), ending with one kEnd.
// Characters Python would not accept, and those the language has no use for (strings), are
// errors: the tokens then end with a kError at the offending place and the error is returned,
// so that the parser can still report an earlier syntax error first, as CPython would.
absl::Status Tokenize(absl::string_view source, std::vector<Token>* tokens);

// Compiles `source` (already length-checked) into `code`.
absl::Status CompileToCode(absl::string_view source, const std::vector<std::string>& variables,
                           Code* code);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_EXPR_INTERNAL_H_
