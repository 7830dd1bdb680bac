// Copyright lrsched authors.
//
// The parser and code generator of Expr: one recursive-descent pass over the tokens, following
// the productions of CPython 3.11's Grammar/python.gram for the subset (expression,
// disjunction, conjunction, inversion, comparison, sum, term, factor, power, primary, atom),
// emitting stack-machine code as it goes.
//
// Recursion happens only where the grammar nests (brackets, calls, unary operators, the right
// operand of **, the else branch of a conditional), and each such level counts against
// Expr::kMaxDepth before recursing, so a hostile "((((..." is refused at the 33rd level with a
// few hundred stack frames at most. Left-associative chains (1+1+1...) loop instead.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "scheduler/internal/expr_internal.h"

namespace lrsched::scheduler_internal {
namespace {

constexpr absl::string_view kKeywords[] = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield"};

bool IsKeyword(absl::string_view name) {
  return std::find(std::begin(kKeywords), std::end(kKeywords), name) != std::end(kKeywords);
}

class Parser {
 public:
  Parser(absl::string_view source, const std::vector<Token>& tokens, absl::Status lex_error,
         const std::vector<std::string>& variables, Code* code)
      : src_(source),
        toks_(tokens),
        lex_error_(std::move(lex_error)),
        vars_(variables),
        code_(code) {}

  absl::Status Parse() {
    if (!ParseExpr()) return status_;
    while (Peek().kind == Tok::kNewline) Next();
    if (IsOp(Peek(), ",")) {
      Fail(Peek().pos, "tuples are not supported");
      return status_;
    }
    if (Peek().kind != Tok::kEnd) {
      Unexpected(Peek());
      return status_;
    }
    int depth = 0;
    for (const Instr& in : code_->instrs) {
      switch (in.op) {
        case Op::kConst:
        case Op::kArg:
          ++depth;
          break;
        case Op::kBinary:
        case Op::kCompare:
        case Op::kCompareOrJump:
        case Op::kJumpIfFalseOrPop:
        case Op::kJumpIfTrueOrPop:
        case Op::kPopJumpIfFalse:
          --depth;
          break;
        case Op::kCall:
          depth -= in.a - 1;
          break;
        case Op::kNeg:
        case Op::kNot:
        case Op::kJump:
          break;
      }
      // Scanning linearly over-counts (both arms of a conditional), which is safe.
      code_->max_stack = std::max(code_->max_stack, depth);
    }
    if (code_->max_stack > kStackCapacity) return SyntaxError(0, "expression too complex");
    return absl::OkStatus();
  }

 private:
  const Token& Peek() const { return toks_[cur_]; }
  const Token& Next() {
    const Token& t = toks_[cur_];
    if (t.kind != Tok::kEnd && t.kind != Tok::kError) ++cur_;
    return t;
  }
  absl::string_view Text(const Token& t) const { return t.text(src_); }
  bool IsOp(const Token& t, absl::string_view op) const {
    return t.kind == Tok::kOp && Text(t) == op;
  }
  bool IsWord(const Token& t, absl::string_view word) const {
    return t.kind == Tok::kName && Text(t) == word;
  }

  // A failure at or after the tokenizer's error is that error: CPython's parser pulls tokens
  // one by one and so meets whichever comes first.
  bool Fail(size_t pos, absl::string_view message) {
    const bool lex = Peek().kind == Tok::kError && pos >= Peek().pos;
    status_ = lex ? lex_error_ : SyntaxError(pos, message);
    return false;
  }

  // Names what is wrong with a token found where it does not fit.
  bool Unexpected(const Token& t) {
    if (t.kind == Tok::kEnd) return Fail(t.pos, "unexpected end of expression");
    if (t.kind == Tok::kNewline) return Fail(t.pos, "unexpected end of line");
    const absl::string_view text = Text(t);
    if (t.kind == Tok::kOp) {
      if (text == "//") return Fail(t.pos, "'//' (floor division) is not supported");
      for (const char* op : {"<<", ">>", "&", "|", "^", "~", "@"}) {
        if (text == op) return Fail(t.pos, absl::StrCat("'", text, "' is not supported"));
      }
      if (text == "." || text == "...") return Fail(t.pos, "attribute access is not supported");
      if (text == "[") return Fail(t.pos, "subscripts and lists are not supported");
      if (text == "{") return Fail(t.pos, "sets and dicts are not supported");
      if (text == "=" || text == ":=" ||
          (text.size() >= 2 && text.back() == '=' && text != "==" && text != "<=" && text != ">=" &&
           text != "!=")) {
        return Fail(t.pos, "assignment is not supported");
      }
    }
    if (t.kind == Tok::kName) {
      if (text == "lambda") return Fail(t.pos, "lambda is not supported");
      // Python expressions beyond the language, as opposed to syntax errors.
      const Token& next = (&t)[1];  // a name is never the last token (kEnd or kError is)
      if (text == "not" && IsWord(next, "in")) return Fail(t.pos, "'not in' is not supported");
      for (const char* word : {"in", "is", "None", "for", "await"}) {
        if (text == word) return Fail(t.pos, absl::StrCat("'", text, "' is not supported"));
      }
    }
    return Fail(t.pos, absl::StrCat("unexpected '", text, "'"));
  }

  bool Expect(absl::string_view op) {
    if (IsOp(Peek(), op)) {
      Next();
      return true;
    }
    if (Peek().kind == Tok::kOp && !IsOp(Peek(), ")") && !IsOp(Peek(), ",")) {
      return Unexpected(Peek());
    }
    return Fail(Peek().pos, absl::StrCat("expected '", op, "'"));
  }

  bool Enter(const Token& at) {
    if (++depth_ > Expr::kMaxDepth) {
      return Fail(at.pos, absl::StrCat("expression nested too deeply (the limit is ",
                                       Expr::kMaxDepth, " levels)"));
    }
    return true;
  }
  void Leave() { --depth_; }

  size_t Here() const { return code_->instrs.size(); }
  void Emit(Op op, uint8_t sub = 0, int32_t a = 0) { code_->instrs.push_back({op, sub, a}); }
  // Points the jump at `from` to the current end of the code.
  void PatchToHere(size_t from) { code_->instrs[from].a = static_cast<int32_t>(Here() - from); }
  void EmitConst(PyValue v) {
    code_->consts.push_back(v);
    Emit(Op::kConst, 0, static_cast<int32_t>(code_->consts.size() - 1));
  }

  // expression: disjunction ['if' disjunction 'else' expression]
  bool ParseExpr() {
    const size_t body = Here();
    if (!ParseDisjunction()) return false;
    if (!IsWord(Peek(), "if")) return true;
    if (!Enter(Next())) return false;
    const size_t cond = Here();
    if (!ParseDisjunction()) return false;
    const size_t cond_end = Here();
    if (!IsWord(Peek(), "else")) {
      return Peek().kind == Tok::kEnd ? Fail(Peek().pos, "expected 'else'") : Unexpected(Peek());
    }
    Next();
    // The body was emitted first but must run after the condition; jumps are relative and
    // never leave their block, so moving the blocks keeps them valid.
    auto& code = code_->instrs;
    std::rotate(code.begin() + body, code.begin() + cond, code.begin() + cond_end);
    const size_t pop_jump = body + (cond_end - cond);
    code.insert(code.begin() + pop_jump, Instr{Op::kPopJumpIfFalse, 0, 0});
    const size_t jump = Here();
    Emit(Op::kJump);
    PatchToHere(pop_jump);
    if (!ParseExpr()) return false;
    PatchToHere(jump);
    Leave();
    return true;
  }

  // disjunction: conjunction ('or' conjunction)*, and conjunction likewise with 'and'; every
  // short-circuit jump lands after the whole chain.
  bool ParseBoolChain(bool is_or) {
    if (!(is_or ? ParseBoolChain(false) : ParseInversion())) return false;
    std::vector<size_t> jumps;
    while (IsWord(Peek(), is_or ? "or" : "and")) {
      Next();
      jumps.push_back(Here());
      Emit(is_or ? Op::kJumpIfTrueOrPop : Op::kJumpIfFalseOrPop);
      if (!(is_or ? ParseBoolChain(false) : ParseInversion())) return false;
    }
    for (size_t j : jumps) PatchToHere(j);
    return true;
  }
  bool ParseDisjunction() { return ParseBoolChain(true); }

  // inversion: 'not' inversion | comparison
  bool ParseInversion() {
    if (!IsWord(Peek(), "not")) return ParseComparison();
    if (!Enter(Next())) return false;
    if (!ParseInversion()) return false;
    Emit(Op::kNot);
    Leave();
    return true;
  }

  // Whether `t` is the operator of one of `ops`, and which.
  template <typename OpT, size_t N>
  bool OpAt(const Token& t, const std::pair<const char*, OpT> (&ops)[N], OpT* op) const {
    for (const auto& [text, value] : ops) {
      if (IsOp(t, text)) {
        *op = value;
        return true;
      }
    }
    return false;
  }
  bool ComparisonAt(const Token& t, PyCmpOp* op) const {
    static constexpr std::pair<const char*, PyCmpOp> kOps[] = {
        {"<", PyCmpOp::kLt},  {"<=", PyCmpOp::kLe}, {">", PyCmpOp::kGt},
        {">=", PyCmpOp::kGe}, {"==", PyCmpOp::kEq}, {"!=", PyCmpOp::kNe}};
    return OpAt(t, kOps, op);
  }

  // comparison: sum (compare_op sum)*, chained: a < b < c is a < b and b < c, with b
  // evaluated once and c only if a < b.
  bool ParseComparison() {
    if (!ParseSum()) return false;
    PyCmpOp op;
    if (!ComparisonAt(Peek(), &op)) return true;
    std::vector<size_t> jumps;
    while (true) {
      Next();
      if (!ParseSum()) return false;
      PyCmpOp next_op;
      if (!ComparisonAt(Peek(), &next_op)) break;
      jumps.push_back(Here());
      Emit(Op::kCompareOrJump, static_cast<uint8_t>(op));
      op = next_op;
    }
    Emit(Op::kCompare, static_cast<uint8_t>(op));
    for (size_t j : jumps) PatchToHere(j);
    return true;
  }

  // sum: sum ('+' | '-') term | term
  bool ParseSum() {
    static constexpr std::pair<const char*, PyBinOp> kOps[] = {{"+", PyBinOp::kAdd},
                                                               {"-", PyBinOp::kSub}};
    if (!ParseTerm()) return false;
    PyBinOp op;
    while (OpAt(Peek(), kOps, &op)) {
      Next();
      if (!ParseTerm()) return false;
      Emit(Op::kBinary, static_cast<uint8_t>(op));
    }
    return true;
  }

  // term: term ('*' | '/' | '%') factor | factor   ('//' and '@' are refused)
  bool ParseTerm() {
    static constexpr std::pair<const char*, PyBinOp> kOps[] = {
        {"*", PyBinOp::kMul}, {"/", PyBinOp::kDiv}, {"%", PyBinOp::kMod}};
    if (!ParseFactor()) return false;
    PyBinOp op;
    while (OpAt(Peek(), kOps, &op)) {
      Next();
      if (!ParseFactor()) return false;
      Emit(Op::kBinary, static_cast<uint8_t>(op));
    }
    if (IsOp(Peek(), "//") || IsOp(Peek(), "@")) return Unexpected(Peek());
    return true;
  }

  // factor: ('+' | '-') factor | power
  bool ParseFactor() {
    const Token& t = Peek();
    if (!IsOp(t, "-") && !IsOp(t, "+")) return ParsePower();
    Next();
    if (!Enter(t)) return false;
    if (!ParseFactor()) return false;
    if (IsOp(t, "-")) Emit(Op::kNeg);  // unary + leaves an int or float unchanged
    Leave();
    return true;
  }

  // power: primary '**' factor | primary   (so -2**2 is -(2**2) and 2**-1 is 2**(-1))
  bool ParsePower() {
    if (!ParsePrimary()) return false;
    if (!IsOp(Peek(), "**")) return true;
    if (!Enter(Next())) return false;
    if (!ParseFactor()) return false;
    Emit(Op::kBinary, static_cast<uint8_t>(PyBinOp::kPow));
    Leave();
    return true;
  }

  bool IsVariable(absl::string_view name) const {
    return std::find(vars_.begin(), vars_.end(), name) != vars_.end();
  }

  // primary: NAME '(' args ')' | atom, and no other trailers.
  bool ParsePrimary() {
    if (!ParseAtom()) return false;
    const Token& t = Peek();
    if (IsOp(t, "(")) {
      return Fail(t.pos, "only min max abs floor ceil exp log sqrt sin cos tan tanh can be called");
    }
    if (IsOp(t, "[")) return Fail(t.pos, "subscripts are not supported");
    if (IsOp(t, ".")) return Fail(t.pos, "attribute access is not supported");
    return true;
  }

  bool ParseAtom() {
    const Token& t = Next();
    if (t.kind == Tok::kNumber) {
      EmitConst(t.number);
      return true;
    }
    if (IsOp(t, "(")) {
      if (!Enter(t)) return false;
      if (IsOp(Peek(), ")")) return Fail(Peek().pos, "empty parentheses");
      if (!ParseExpr()) return false;
      if (IsOp(Peek(), ",")) return Fail(Peek().pos, "tuples are not supported");
      if (!Expect(")")) return false;
      Leave();
      return true;
    }
    if (t.kind != Tok::kName) {
      if (t.kind == Tok::kEnd) return Fail(t.pos, "expected an expression");
      return Unexpected(t);
    }
    const absl::string_view name = Text(t);
    if (name == "True" || name == "False") {
      EmitConst(PyValue::Int(name == "True" ? 1 : 0));
      return true;
    }
    if (IsKeyword(name)) return Unexpected(t);
    // In torch's eval the variables are locals, so they shadow math's names.
    const PyFnInfo* fn = IsVariable(name) ? nullptr : LookupPyFn(name);
    if (IsOp(Peek(), "(")) {
      if (fn == nullptr) {
        if (IsVariable(name) || name == "pi" || name == "e") {
          return Fail(t.pos, absl::StrCat("'", name, "' is not callable"));
        }
        return Fail(t.pos, absl::StrCat("unknown function '", name, "'"));
      }
      return ParseCall(t, *fn);
    }
    if (IsVariable(name)) {
      Emit(Op::kArg);
    } else if (name == "pi" || name == "e") {
      EmitConst(PyValue::Float(name == "pi" ? kPi : kE));
    } else if (fn != nullptr) {
      return Fail(t.pos, absl::StrCat("function '", name, "' must be called"));
    } else {
      return Fail(t.pos, absl::StrCat("unknown name '", name, "'"));
    }
    return true;
  }

  // NAME '(' [expression (',' expression)* [',']] ')'
  bool ParseCall(const Token& name, const PyFnInfo& fn) {
    if (!Enter(Next())) return false;
    int nargs = 0;
    while (!IsOp(Peek(), ")")) {
      if (IsOp(Peek(), "*") || IsOp(Peek(), "**")) {
        return Fail(Peek().pos, "argument unpacking is not supported");
      }
      if (!ParseExpr()) return false;
      ++nargs;
      if (IsOp(Peek(), ",")) {
        Next();
      } else if (!IsOp(Peek(), ")")) {
        if (Peek().kind == Tok::kEnd) return Fail(Peek().pos, "expected ')'");
        return Unexpected(Peek());
      }
    }
    Next();
    if (nargs < fn.min_args || (fn.max_args >= 0 && nargs > fn.max_args)) {
      const std::string expected =
          fn.min_args == fn.max_args ? absl::StrCat("exactly ", fn.min_args)
          : fn.max_args < 0          ? absl::StrCat("at least ", fn.min_args)
                                     : absl::StrCat(fn.min_args, " or ", fn.max_args);
      return Fail(name.pos, absl::StrCat(fn.name, "() takes ", expected,
                                         fn.max_args == 1 ? " argument (" : " arguments (", nargs,
                                         " given)"));
    }
    Emit(Op::kCall, static_cast<uint8_t>(fn.fn), nargs);
    Leave();
    return true;
  }

  absl::string_view src_;
  const std::vector<Token>& toks_;
  const absl::Status lex_error_;
  const std::vector<std::string>& vars_;
  Code* code_;
  size_t cur_ = 0;
  int depth_ = 0;
  absl::Status status_;
};

}  // namespace

absl::Status CompileToCode(absl::string_view source, const std::vector<std::string>& variables,
                           Code* code) {
  std::vector<Token> tokens;
  absl::Status lex_error = Tokenize(source, &tokens);
  *code = Code();
  absl::Status status = Parser(source, tokens, lex_error, variables, code).Parse();
  return status.ok() ? lex_error : status;  // the parser cannot get past a kError token
}

}  // namespace lrsched::scheduler_internal
