// Copyright lrsched authors.
//
// The tokenizer of Expr. It follows CPython 3.11's Parser/tokenizer.c for the part of the
// language we accept, so that a literal means the same number and a source Python refuses is
// refused here too (leading indentation, "07", "1__0", "1_", "0x", "1e+").
#include <locale.h>
#include <stdlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "scheduler/internal/expr_internal.h"

namespace lrsched::scheduler_internal {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }
// tokenizer.c's is_potential_identifier_char: non-ASCII bytes could start a Unicode name.
bool IsPotentialNameChar(char c) { return IsNameChar(c) || static_cast<unsigned char>(c) >= 128; }

int DigitValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

// Longest first, so that "**" is not read as two "*".
constexpr absl::string_view kOperators[] = {
    "**=", "//=", ">>=", "<<=", "...", "**", "//", "<=", ">=", "==", "!=", "->",
    ":=",  "+=",  "-=",  "*=",  "/=",  "%=", "&=", "|=", "^=", "@=", "<<", ">>",
    "+",   "-",   "*",   "/",   "%",   "<",  ">",  "(",  ")",  ",",  "=",  ".",
    "[",   "]",   "{",   "}",   ":",   ";",  "@",  "&",  "|",  "^",  "~",  "!"};

class Lexer {
 public:
  explicit Lexer(absl::string_view s) : s_(s) {}

  // Where Run found an error.
  size_t error_pos() const { return error_pos_; }

  absl::Status Run(std::vector<Token>* out) {
    size_t i = 0;
    int parens = 0;
    bool line_start = true;  // at the start of a physical line, outside brackets
    while (i < s_.size()) {
      if (line_start) {
        // CPython measures indentation here (a form feed resets it); an indented line that is
        // not blank (comment or newline next) is an INDENT, which an expression cannot take.
        line_start = false;
        bool indented = false;
        for (; i < s_.size() && (s_[i] == ' ' || s_[i] == '\t' || s_[i] == '\f'); ++i) {
          indented = s_[i] != '\f';
        }
        if (indented && (i == s_.size() || (s_[i] != '#' && s_[i] != '\n' && s_[i] != '\r'))) {
          return Error(i, "unexpected indent");
        }
        continue;
      }
      const char c = s_[i];
      if (c == ' ' || c == '\t' || c == '\f') {
        ++i;
        continue;
      }
      if (c == '#') {
        while (i < s_.size() && s_[i] != '\n' && s_[i] != '\r') ++i;
        continue;
      }
      if (c == '\\') {
        if (i + 1 >= s_.size() || (s_[i + 1] != '\n' && s_[i + 1] != '\r')) {
          return Error(i, "unexpected character after line continuation character");
        }
        i += s_.compare(i + 1, 2, "\r\n") == 0 ? 3 : 2;
        if (i == s_.size()) return Error(i, "unexpected end of input after '\\'");
        continue;
      }
      if (c == '\n' || c == '\r') {
        i += s_.compare(i, 2, "\r\n") == 0 ? 2 : 1;
        if (parens > 0) continue;  // implicit line joining
        line_start = true;
        // Blank lines before the expression and repeated newlines after it are not tokens.
        if (out->empty() || out->back().kind == Tok::kNewline) continue;
        out->push_back(Token{Tok::kNewline, static_cast<uint32_t>(i - 1), 1, {}});
        continue;
      }
      const size_t start = i;
      Token tok{Tok::kOp, static_cast<uint32_t>(start), 0, {}};
      if (IsDigit(c) || (c == '.' && i + 1 < s_.size() && IsDigit(s_[i + 1]))) {
        tok.kind = Tok::kNumber;
        if (absl::Status st = Number(i, &tok.number); !st.ok()) return st;
      } else if (IsNameStart(c)) {
        tok.kind = Tok::kName;
        while (i < s_.size() && IsNameChar(s_[i])) ++i;
      } else if (c == '\'' || c == '"') {
        return Error(i, "strings are not supported");
      } else {
        for (absl::string_view op : kOperators) {
          if (s_.compare(i, op.size(), op) == 0) {
            i += op.size();
            break;
          }
        }
        if (i == start) {
          return Error(
              i, absl::StrCat("unexpected character '", absl::CHexEscape(s_.substr(i, 1)), "'"));
        }
        if (c == '(' || c == '[' || c == '{') ++parens;
        if ((c == ')' || c == ']' || c == '}') && parens > 0) --parens;
      }
      tok.len = static_cast<uint32_t>(i - start);
      out->push_back(tok);
    }
    out->push_back(Token{Tok::kEnd, static_cast<uint32_t>(s_.size()), 0, {}});
    return absl::OkStatus();
  }

 private:
  // tokenizer.c's tok_decimal_tail: digits with single underscores between them; s_[i] is a
  // digit on entry.
  absl::Status DecimalTail(size_t& i) {
    while (true) {
      while (i < s_.size() && IsDigit(s_[i])) ++i;
      if (i >= s_.size() || s_[i] != '_') return absl::OkStatus();
      if (i + 1 >= s_.size() || !IsDigit(s_[i + 1])) {
        return Error(i + 1, "invalid decimal literal");
      }
      ++i;
    }
  }

  // tokenizer.c's verify_end_of_number: a number may run into a keyword ("1if x else 2" is
  // valid Python) but not into any other name.
  absl::Status VerifyEnd(size_t i, absl::string_view kind) {
    if (i >= s_.size() || !IsPotentialNameChar(s_[i])) return absl::OkStatus();
    const absl::string_view rest = s_.substr(i);
    for (absl::string_view kw : {"and", "else", "for", "if", "in", "is", "or", "not"}) {
      if (rest.substr(0, kw.size()) == kw) return absl::OkStatus();
    }
    return Error(i, absl::StrCat("invalid ", kind, " literal"));
  }

  absl::Status Number(size_t& i, PyValue* out) {
    const size_t start = i;
    if (s_[i] == '0' && i + 1 < s_.size() &&
        absl::string_view("xXoObB").find(s_[i + 1]) != absl::string_view::npos) {
      return RadixNumber(i, out);
    }
    bool is_float = false;
    if (s_[i] != '.') {
      if (absl::Status st = DecimalTail(i); !st.ok()) return st;
    }
    if (i < s_.size() && s_[i] == '.') {
      ++i;
      is_float = true;
      if (i < s_.size() && IsDigit(s_[i])) {
        if (absl::Status st = DecimalTail(i); !st.ok()) return st;
      }
    }
    if (i < s_.size() && (s_[i] == 'e' || s_[i] == 'E')) {
      size_t j = i + 1;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) {
        ++j;
        if (j >= s_.size() || !IsDigit(s_[j])) return Error(j, "invalid decimal literal");
      }
      if (j < s_.size() && IsDigit(s_[j])) {
        i = j;
        is_float = true;
        if (absl::Status st = DecimalTail(i); !st.ok()) return st;
      }
      // Otherwise the 'e' is not ours: "1else" is 1 followed by `else`.
    }
    if (i < s_.size() && (s_[i] == 'j' || s_[i] == 'J')) {
      return Error(start, "complex numbers are not supported");
    }
    if (absl::Status st = VerifyEnd(i, "decimal"); !st.ok()) return st;
    const std::string digits = absl::StrReplaceAll(s_.substr(start, i - start), {{"_", ""}});
    if (is_float) {
      // glibc's strtod is correctly rounded; overflow gives inf and underflow 0 or a subnormal,
      // exactly Python's 1e400 and 1e-400. The "C" locale keeps '.' the decimal point whatever
      // the process's locale.
      static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t{});
      *out = PyValue::Float(strtod_l(digits.c_str(), nullptr, c_locale));
      return absl::OkStatus();
    }
    if (digits.size() > 1 && digits[0] == '0' &&
        digits.find_first_not_of('0') != std::string::npos) {
      return Error(start,
                   "leading zeros in decimal integer literals are not permitted; use an "
                   "0o prefix for octal integers");
    }
    return Accumulate(digits, 10, start, out);
  }

  absl::Status RadixNumber(size_t& i, PyValue* out) {
    const size_t start = i;
    const char prefix = absl::ascii_tolower(s_[i + 1]);
    const int radix = prefix == 'x' ? 16 : (prefix == 'o' ? 8 : 2);
    const char* kind = radix == 16 ? "hexadecimal" : (radix == 8 ? "octal" : "binary");
    i += 2;
    std::string digits;
    do {
      if (i < s_.size() && s_[i] == '_') ++i;
      if (i >= s_.size() || DigitValue(s_[i]) >= radix) {
        if (i < s_.size() && IsDigit(s_[i])) {
          return Error(i,
                       absl::StrCat("invalid digit '", s_.substr(i, 1), "' in ", kind, " literal"));
        }
        return Error(i, absl::StrCat("invalid ", kind, " literal"));
      }
      while (i < s_.size() && DigitValue(s_[i]) < radix) digits.push_back(s_[i++]);
    } while (i < s_.size() && s_[i] == '_');
    if (i < s_.size() && IsDigit(s_[i])) {
      return Error(i, absl::StrCat("invalid digit '", s_.substr(i, 1), "' in ", kind, " literal"));
    }
    if (absl::Status st = VerifyEnd(i, kind); !st.ok()) return st;
    return Accumulate(digits, radix, start, out);
  }

  // Python ints are unbounded; ours are int64, so a larger literal is refused up front.
  absl::Status Accumulate(absl::string_view digits, int radix, size_t pos, PyValue* out) {
    int64_t v = 0;
    for (char d : digits) {
      if (__builtin_mul_overflow(v, int64_t{radix}, &v) ||
          __builtin_add_overflow(v, int64_t{DigitValue(d)}, &v)) {
        return Error(pos, "integer literal too large (the limit is 2**63 - 1)");
      }
    }
    *out = PyValue::Int(v);
    return absl::OkStatus();
  }

  absl::Status Error(size_t pos, absl::string_view message) {
    error_pos_ = pos;
    return SyntaxError(pos, message);
  }

  absl::string_view s_;
  size_t error_pos_ = 0;
};

}  // namespace

absl::Status SyntaxError(size_t pos, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("column ", pos + 1, ": ", message));
}

absl::Status Tokenize(absl::string_view source, std::vector<Token>* tokens) {
  tokens->clear();
  Lexer lexer(source);
  absl::Status status = lexer.Run(tokens);
  if (!status.ok()) {
    tokens->push_back(Token{Tok::kError, static_cast<uint32_t>(lexer.error_pos()), 0, {}});
  }
  return status;
}

}  // namespace lrsched::scheduler_internal
