// Copyright lrsched authors.
//
// Expr: a compiled Python-subset expression, the form in which lr_lambda (LambdaLR,
// MultiplicativeLR) and scale_fn (CyclicLR) reach lrsched as strings. Internal: the nodes of
// those schedulers (schedulers_*.cc) compile and run them; a spec's author sees only the
// language, below.
//
// The language is the subset in shared/golden/README.md, with Python 3 semantics:
//   number literals (int and float, as Python spells them), + - * / % **, unary - and +,
//   parentheses, comparisons (< <= > >= == !=, chained as in Python), `a if c else b`,
//   `and` `or` `not`, the functions min max abs floor ceil exp log sqrt sin cos tan tanh and
//   the constants pi e; variables are named at Compile time.
// Values are Python ints (int64; overflow is an error, where Python would grow) or floats
// (IEEE double); `/` is true division, `%` floored modulo, `**` right-associative and binding
// tighter than unary minus on its left (-2 ** 2 == -4). Where Python raises (ZeroDivisionError,
// OverflowError, a math domain ValueError, a complex result), Eval returns an error whose
// message starts with Python's exception name.
//
// Invariants: Compile bounds the source length, the nesting depth and the node count, so Eval
// always terminates quickly (there are no loops or calls other than the fixed functions), and
// Eval never allocates on success. An Expr is immutable after Compile and safe to share
// between threads.
#ifndef LRSCHED_SCHEDULER_INTERNAL_EXPR_H_
#define LRSCHED_SCHEDULER_INTERNAL_EXPR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lrsched::scheduler_internal {

class Expr {
 public:
  static constexpr size_t kMaxSourceLength = 1024;
  static constexpr int kMaxDepth = 32;

  // Compiles `source`. Every name in `variables` is bound to Eval's argument (torch passes one
  // argument; the golden cases name it `epoch` or `step`, `x` for scale_fn). A malformed
  // expression is INVALID_ARGUMENT with a message naming the 1-based column, e.g.
  // "column 7: expected ')'".
  static absl::StatusOr<Expr> Compile(std::string_view source,
                                      const std::vector<std::string>& variables);

  // Evaluates with every variable equal to `arg` (a Python int) and returns the result as a
  // Python float would be (an int or bool result is converted, as `base_lr * f(epoch)` does).
  // Errors are INVALID_ARGUMENT, e.g. "ZeroDivisionError: float division by zero".
  absl::StatusOr<double> Eval(int64_t arg) const;

  const std::string& source() const;
  // Instructions one Eval runs at most (every jump goes forward), the measure of its cost
  // (Schedule::step_cost()).
  int64_t cost() const;

  Expr(const Expr&) = default;
  Expr& operator=(const Expr&) = default;

 private:
  struct Program;
  explicit Expr(std::shared_ptr<const Program> p) : program_(std::move(p)) {}
  std::shared_ptr<const Program> program_;
};

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_EXPR_H_
