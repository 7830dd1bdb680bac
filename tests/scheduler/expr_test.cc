// Copyright lrsched authors.
//
// Unit tests of Expr (scheduler/internal/expr.h): syntax, CPython 3 semantics, errors and limits.
// Every expected float was printed with float.hex by Debian's /usr/bin/python3 (3.11) evaluating
// the same source in the environment torch_trace.py's `lam` gives a lambda, and is compared bit for
// bit; expected error messages are Python's "ExceptionName: str(exception)".
#include "scheduler/internal/expr.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/scheduler/counting_allocator.h"

namespace lrsched {
namespace {

using scheduler_internal::Expr;

const std::vector<std::string> kVars = {"epoch", "step", "x"};
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

std::string Hex(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", d);
  return buf;
}

// Same bits; any NaN matches any NaN (Python's float.hex does not show a NaN's payload).
::testing::AssertionResult SameDouble(double got, double want) {
  if (Bits(got) == Bits(want) || (std::isnan(got) && std::isnan(want))) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "got " << Hex(got) << ", want " << Hex(want);
}

absl::StatusOr<double> CompileAndEval(const std::string& source, int64_t arg,
                                      const std::vector<std::string>& vars = kVars) {
  absl::StatusOr<Expr> e = Expr::Compile(source, vars);
  if (!e.ok()) return e.status();
  return e->Eval(arg);
}

struct Case {
  const char* source;
  int64_t arg;
  double want;
};

void ExpectCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    absl::StatusOr<double> got = CompileAndEval(c.source, c.arg);
    ASSERT_TRUE(got.ok()) << c.source << ": " << got.status();
    EXPECT_TRUE(SameDouble(*got, c.want)) << c.source << " at " << c.arg;
  }
}

// The lambdas of the golden traces (tests/data/torch-1.13-traces.jsonl).
TEST(ExprTest, GoldenLambdas) {
  ExpectCases({
      {"epoch % 100 / 100.", 0, 0x0p+0},
      {"epoch % 100 / 100.", 1, 0x1.47ae147ae147bp-7},
      {"epoch % 100 / 100.", 7, 0x1.1eb851eb851ecp-4},
      {"epoch % 100 / 100.", 99, 0x1.fae147ae147aep-1},
      {"epoch % 100 / 100.", 150, 0x1p-1},
      {"epoch % 100 / 100.", -3, 0x1.f0a3d70a3d70ap-1},
      {"min(1.0, (epoch + 1) / 10)", 0, 0x1.999999999999ap-4},
      {"min(1.0, (epoch + 1) / 10)", 1, 0x1.999999999999ap-3},
      {"min(1.0, (epoch + 1) / 10)", 9, 0x1p+0},
      {"min(1.0, (epoch + 1) / 10)", 20, 0x1p+0},
      {"min(1.0, (epoch + 1) / 10)", -3, -0x1.999999999999ap-3},
      {"0.95 ** epoch", 0, 0x1p+0},
      {"0.95 ** epoch", 1, 0x1.e666666666666p-1},
      {"0.95 ** epoch", 2, 0x1.ce147ae147ae1p-1},
      {"0.95 ** epoch", 7, 0x1.658c775099756p-1},
      {"0.95 ** epoch", 100, 0x1.8401ff6058453p-8},
      {"0.95 ** epoch", 1000, 0x1.ffcb2f699313dp-75},
      {"0.95 ** epoch", -3, 0x1.2a95f6f7c066cp+0},
      {"0.97", 0, 0x1.f0a3d70a3d70ap-1},
      {"1 / (1.0 + x / 50)", 0, 0x1p+0},
      {"1 / (1.0 + x / 50)", 1, 0x1.f5f5f5f5f5f5fp-1},
      {"1 / (1.0 + x / 50)", 7, 0x1.c11f7047dc11fp-1},
      {"1 / (1.0 + x / 50)", 49, 0x1.0295fad40a57fp-1},
      {"1 / (1.0 + x / 50)", 1000, 0x1.8618618618618p-5},
      {"1 / (1.0 + x / 50)", -3, 0x1.10572620ae4c4p+0},
  });
}

TEST(ExprTest, MatchesCPython) {
  ExpectCases({
      // True division: int/int is correctly rounded, even past 2**53.
      {"7 / 2", 0, 0x1.cp+1},
      {"1 / 3", 0, 0x1.5555555555555p-2},
      {"-7 / 2", 0, -0x1.cp+1},
      {"0 / -5", 0, -0x0p+0},
      {"epoch / 3", 10, 0x1.aaaaaaaaaaaabp+1},
      {"5258986265376043509 / 888599", 0, 0x1.587d63591219dp+42},
      {"7053584670082022960 / 66173", 0, 0x1.83c88d8316566p+46},
      {"-1096615257545913404 / 519502", 0, -0x1.eb7b455afd694p+40},
      {"9223372036854775807 / 9223372036854775806", 0, 0x1p+0},
      {"1 / 9223372036854775807", 0, 0x1p-63},
      // Floored modulo (float_rem for floats, signed zeros included).
      {"-7 % 3", 0, 0x1p+1},
      {"7 % -3", 0, -0x1p+1},
      {"-7.5 % 2", 0, 0x1p-1},
      {"7.5 % -2", 0, -0x1p-1},
      {"0.0 % -5", 0, -0x0p+0},
      {"-0.0 % 5", 0, 0x0p+0},
      {"-5 % 1e400", 0, kInf},
      {"5 % 1e400", 0, 0x1.4p+2},
      {"epoch % 100 / 100.", 1234, 0x1.5c28f5c28f5c3p-2},
      // **: right-associative, tighter than unary minus on its left; float_pow.
      {"2 ** 3 ** 2", 0, 0x1p+9},
      {"-2 ** 2", 0, -0x1p+2},
      {"2 ** -1", 0, 0x1p-1},
      {"(-2) ** 63", 0, -0x1p+63},
      {"(-2.0) ** -3", 0, -0x1p-3},
      {"2 ** 0.5", 0, 0x1.6a09e667f3bcdp+0},
      {"0.5 ** 1074", 0, 0x0.0000000000001p-1022},
      {"(1e400 - 1e400) ** 0", 0, 0x1p+0},
      {"1 ** (1e400 - 1e400)", 0, 0x1p+0},
      {"(-1) ** 1e300", 0, 0x1p+0},
      {"0.0 ** 3", 0, 0x0p+0},
      {"(-0.0) ** 3", 0, -0x0p+0},
      {"1e400 ** -3", 0, 0x0p+0},
      {"(-1e400) ** 3", 0, -kInf},
      {"0.5 ** 1e400", 0, 0x0p+0},
      {"2 ** -1e400", 0, 0x0p+0},
      // bool is an int.
      {"True + 1", 0, 0x1p+1},
      {"(1 < 2) * 3", 0, 0x1.8p+1},
      {"9223372036854775807 * 1.0", 0, 0x1p+63},
      // math functions and constants.
      {"exp(1)", 0, 0x1.5bf0a8b145769p+1},
      {"log(10)", 0, 0x1.26bb1bbb55516p+1},
      {"log(8, 2)", 0, 0x1.8p+1},
      {"log(100, 10)", 0, 0x1p+1},
      {"log(2.5, 0.5)", 0, -0x1.5269e12f346e3p+0},
      {"sqrt(2)", 0, 0x1.6a09e667f3bcdp+0},
      {"sin(1)", 0, 0x1.aed548f090ceep-1},
      {"cos(1)", 0, 0x1.14a280fb5068cp-1},
      {"tan(1)", 0, 0x1.8eb245cbee3a6p+0},
      {"tanh(0.5)", 0, 0x1.d9353d7568af3p-2},
      {"exp(-1000)", 0, 0x0p+0},
      {"log(1e400)", 0, kInf},
      {"pi", 0, 0x1.921fb54442d18p+1},
      {"e", 0, 0x1.5bf0a8b145769p+1},
      {"sqrt(-0.0)", 0, -0x0p+0},
      {"tanh(1e400)", 0, 0x1p+0},
      {"log(9223372036854775807)", 0, 0x1.5d589f2fe5107p+5},
      // floor, ceil, abs.
      {"floor(-2.5)", 0, -0x1.8p+1},
      {"ceil(-2.5)", 0, -0x1p+1},
      {"floor(2.5)", 0, 0x1p+1},
      {"ceil(2.5)", 0, 0x1.8p+1},
      {"floor(epoch / 4)", 7, 0x1p+0},
      {"abs(-3)", 0, 0x1.8p+1},
      {"abs(-2.5)", 0, 0x1.4p+1},
      {"abs(-0.0)", 0, 0x0p+0},
      // min/max keep the first of equal items; NaN as Python orders it.
      {"min(3, 1, 2)", 0, 0x1p+0},
      {"max(3, 1, 2)", 0, 0x1.8p+1},
      {"min(0.0, -0.0)", 0, 0x0p+0},
      {"min(-0.0, 0.0)", 0, -0x0p+0},
      {"max(0.0, -0.0)", 0, 0x0p+0},
      {"max(1e400 - 1e400, 1)", 0, kNaN},
      {"max(1, 1e400 - 1e400)", 0, 0x1p+0},
      {"min(1.0, (epoch + 1) / 10)", 3, 0x1.999999999999ap-2},
      // Literals as Python spells them; floats correctly rounded.
      {"1_000", 0, 0x1.f4p+9},
      {"0x1F", 0, 0x1.fp+4},
      {"0x_1f", 0, 0x1.fp+4},
      {"0o17", 0, 0x1.ep+3},
      {"0B101", 0, 0x1.4p+2},
      {"1.", 0, 0x1p+0},
      {".5", 0, 0x1p-1},
      {"1e-3", 0, 0x1.0624dd2f1a9fcp-10},
      {"1E+3", 0, 0x1.f4p+9},
      {"1e400", 0, kInf},
      {"0.1", 0, 0x1.999999999999ap-4},
      {"1_0.2_5e-0_1", 0, 0x1.0666666666666p+0},
      {"00", 0, 0x0p+0},
      {"007.5", 0, 0x1.ep+2},
      {"2.2250738585072011e-308", 0, 0x0.fffffffffffffp-1022},
      {"4.9e-324", 0, 0x0.0000000000001p-1022},
      {"1e-400", 0, 0x0p+0},
      {"123456789012345678901234567890.", 0, 0x1.8ee90ff6c373ep+96},
      // and/or return an operand and short-circuit; not gives a bool.
      {"0 or 2.5", 0, 0x1.4p+1},
      {"0 or -0.0", 0, -0x0p+0},
      {"-0.0 or 0", 0, 0x0p+0},
      {"2 and 3", 0, 0x1.8p+1},
      {"0.0 and 3", 0, 0x0p+0},
      {"not 0.0", 0, 0x1p+0},
      {"not 2", 0, 0x0p+0},
      {"(1e400 - 1e400) and 3", 0, 0x1.8p+1},
      {"epoch and 1 / epoch", 0, 0x0p+0},
      {"1 or 1 / 0", 0, 0x1p+0},
      // Comparisons: chained, lazy, and exact between int and float.
      {"1 < 2 < 3", 0, 0x1p+0},
      {"1 < 3 < 2", 0, 0x0p+0},
      {"1 > 2 < 1 / 0", 0, 0x0p+0},
      {"9007199254740993 > 9007199254740992.0", 0, 0x1p+0},
      {"9007199254740993 == 9007199254740992.0", 0, 0x0p+0},
      {"9223372036854775807 < 9223372036854775808.0", 0, 0x1p+0},
      {"9223372036854775807 == 9223372036854775807.0", 0, 0x0p+0},
      {"-9223372036854775807 - 1 == -9223372036854775808.0", 0, 0x1p+0},
      {"2 == 2.0 != 3", 0, 0x1p+0},
      {"1 < 1e400 - 1e400", 0, 0x0p+0},
      {"1 != 1e400 - 1e400", 0, 0x1p+0},
      {"-1 < -0.5", 0, 0x1p+0},
      {"0 < -0.5", 0, 0x0p+0},
      // Conditionals evaluate only the chosen branch.
      {"1 if epoch == 0 else 1 / epoch", 0, 0x1p+0},
      {"1 if epoch == 0 else 1 / epoch", 4, 0x1p-2},
      {"1 / 0 if epoch else 2", 0, 0x1p+1},
      {"1 if 0 else 2 if 0 else 3", 0, 0x1.8p+1},
      {"(1 if 0 else 2) if 1 else 3", 0, 0x1p+1},
      // Python's lexical rules: line joining, comments, 1if (a number then a keyword).
      {"(1 +\n 2)", 0, 0x1.8p+1},
      {"1 # comment", 0, 0x1p+0},
      {"1 + \\\n 2", 0, 0x1.8p+1},
      {"\f1", 0, 0x1p+0},
      {"1\n", 0, 0x1p+0},
      {"1if epoch else 2", 0, 0x1p+1},
  });
}

TEST(ExprTest, RaisesAsCPython) {
  struct ErrorCase {
    const char* source;
    const char* message;
  };
  const ErrorCase cases[] = {
      {"1 / 0", "ZeroDivisionError: division by zero"},
      {"1.0 / 0", "ZeroDivisionError: float division by zero"},
      {"1 / 0.0", "ZeroDivisionError: float division by zero"},
      {"epoch / epoch", "ZeroDivisionError: division by zero"},
      {"5 % 0", "ZeroDivisionError: integer modulo by zero"},
      {"5.0 % 0", "ZeroDivisionError: float modulo"},
      {"5 % 0.0", "ZeroDivisionError: float modulo"},
      {"0 ** -1", "ZeroDivisionError: 0.0 cannot be raised to a negative power"},
      {"0.0 ** -1", "ZeroDivisionError: 0.0 cannot be raised to a negative power"},
      {"0.0 ** -0.5", "ZeroDivisionError: 0.0 cannot be raised to a negative power"},
      {"10.0 ** 400", "OverflowError: (34, 'Numerical result out of range')"},
      {"(-2.0) ** 1e300", "OverflowError: (34, 'Numerical result out of range')"},
      {"floor(1e400)", "OverflowError: cannot convert float infinity to integer"},
      {"ceil(-1e400)", "OverflowError: cannot convert float infinity to integer"},
      {"floor(1e400 - 1e400)", "ValueError: cannot convert float NaN to integer"},
      {"exp(1000)", "OverflowError: math range error"},
      {"log(0)", "ValueError: math domain error"},
      {"log(-1)", "ValueError: math domain error"},
      {"log(0.0)", "ValueError: math domain error"},
      {"log(-1.0)", "ValueError: math domain error"},
      {"log(-1e400)", "ValueError: math domain error"},
      {"log(2, 1)", "ZeroDivisionError: float division by zero"},
      {"log(-1, 0)", "ValueError: math domain error"},
      {"log(0, 2)", "ValueError: math domain error"},
      {"sqrt(-1)", "ValueError: math domain error"},
      {"sin(1e400)", "ValueError: math domain error"},
      {"cos(-1e400)", "ValueError: math domain error"},
      {"tan(1e400)", "ValueError: math domain error"},
      {"0 < 1 < 1 / 0", "ZeroDivisionError: division by zero"},
      {"1 if 1 / 0 else 2", "ZeroDivisionError: division by zero"},
      {"min(1, 1 / 0)", "ZeroDivisionError: division by zero"},
      // Python would return a complex number, or grow the int.
      {"(-8) ** (1 / 3)", "ValueError: complex result"},
      {"(-8.0) ** 0.5", "ValueError: complex result"},
      {"(-1e300) ** 3.7", "OverflowError: complex exponentiation"},  // CPython's complex_pow
      {"(-0.1) ** -400.5", "OverflowError: complex exponentiation"},
      {"9223372036854775807 + 1", "OverflowError: integer overflow"},
      {"-9223372036854775807 - 2", "OverflowError: integer overflow"},
      {"-(-9223372036854775807 - 1)", "OverflowError: integer overflow"},
      {"abs(-9223372036854775807 - 1)", "OverflowError: integer overflow"},
      {"3037000500 * 3037000500", "OverflowError: integer overflow"},
      {"2 ** 63", "OverflowError: integer overflow"},
      {"floor(1e19)", "OverflowError: integer overflow"},
      // floor returns an int, so ** stays exact and overflows where a float would not.
      {"floor(2.0) ** 63", "OverflowError: integer overflow"},
  };
  for (const ErrorCase& c : cases) {
    absl::StatusOr<double> got = CompileAndEval(c.source, 0);
    ASSERT_FALSE(got.ok()) << c.source << " gave " << Hex(*got);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << c.source;
    EXPECT_EQ(got.status().message(), c.message) << c.source;
  }
  EXPECT_TRUE(SameDouble(*CompileAndEval("2.0 ** 63", 0), 0x1p+63));
  EXPECT_TRUE(SameDouble(*CompileAndEval("(-2) ** 63", 0), -0x1p+63));
  EXPECT_EQ(CompileAndEval("epoch * epoch", 1000000000000).status().message(),
            "OverflowError: integer overflow");
}

TEST(ExprTest, CompileErrorsNameTheColumn) {
  struct ErrorCase {
    const char* source;
    const char* message;
  };
  const ErrorCase cases[] = {
      {"(1", "column 3: expected ')'"},
      {"min(1, 2", "column 9: expected ')'"},
      {"1 + foo", "column 5: unknown name 'foo'"},
      {"foo(1)", "column 1: unknown function 'foo'"},
      {"epoch(1)", "column 1: 'epoch' is not callable"},
      {"min", "column 1: function 'min' must be called"},
      {"(min)(1, 2)", "column 2: function 'min' must be called"},
      {"(1)(2)",
       "column 4: only min max abs floor ceil exp log sqrt sin cos tan tanh can be "
       "called"},
      {"min(1)", "column 1: min() takes at least 2 arguments (1 given)"},
      {"floor()", "column 1: floor() takes exactly 1 argument (0 given)"},
      {"log(1, 2, 3)", "column 1: log() takes 1 or 2 arguments (3 given)"},
      {"epoch // 2", "column 7: '//' (floor division) is not supported"},
      {"x.real", "column 2: attribute access is not supported"},
      {"x[0]", "column 2: subscripts are not supported"},
      {"'a'", "column 1: strings are not supported"},
      {"lambda: 1", "column 1: lambda is not supported"},
      {"x = 1", "column 3: assignment is not supported"},
      {"(x := 1)", "column 4: assignment is not supported"},
      {"(1, 2)", "column 3: tuples are not supported"},
      {"()", "column 2: empty parentheses"},
      {"1 2", "column 3: unexpected '2'"},
      {"1 is 1", "column 3: 'is' is not supported"},
      {"1 not in x", "column 3: 'not in' is not supported"},
      {"None", "column 1: 'None' is not supported"},
      {"not not", "column 8: expected an expression"},
      {"1 @ 2", "column 3: '@' is not supported"},
      {"1 << 2", "column 3: '<<' is not supported"},
      {"~1", "column 1: '~' is not supported"},
      {"max(*x)", "column 5: argument unpacking is not supported"},
      {"1 ! 2", "column 3: unexpected '!'"},
      {"1 $ 2", "column 3: unexpected character '$'"},
      {"", "column 1: expected an expression"},
      {"1 +", "column 4: expected an expression"},
      {"not", "column 4: expected an expression"},
      {"1 if 2", "column 7: expected 'else'"},
      {"1 +\n 2", "column 4: unexpected end of line"},
      {" 1", "column 2: unexpected indent"},
      {"x\n ", "column 4: unexpected indent"},
      {"x\\\n", "column 4: unexpected end of input after '\\'"},
      {"1 + ) $", "column 5: unexpected ')'"},  // the earlier error wins, as in CPython
      {"1 + $ )", "column 5: unexpected character '$'"},
      {"1 \\ 2", "column 3: unexpected character after line continuation character"},
      {"07",
       "column 1: leading zeros in decimal integer literals are not permitted; use an 0o "
       "prefix for octal integers"},
      {"1__0", "column 3: invalid decimal literal"},
      {"1_", "column 3: invalid decimal literal"},
      {"1e+", "column 4: invalid decimal literal"},
      {"1abc", "column 2: invalid decimal literal"},
      {"0x", "column 3: invalid hexadecimal literal"},
      {"0b12", "column 4: invalid digit '2' in binary literal"},
      {"1j", "column 1: complex numbers are not supported"},
      {"9223372036854775808", "column 1: integer literal too large (the limit is 2**63 - 1)"},
  };
  for (const ErrorCase& c : cases) {
    absl::StatusOr<Expr> e = Expr::Compile(c.source, kVars);
    ASSERT_FALSE(e.ok()) << c.source;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << c.source;
    EXPECT_EQ(e.status().message(), c.message) << c.source;
  }
}

TEST(ExprTest, VariablesAreNamedAtCompileTime) {
  EXPECT_EQ(CompileAndEval("epoch", 3, {"x"}).status().message(), "column 1: unknown name 'epoch'");
  EXPECT_TRUE(SameDouble(*CompileAndEval("x + step", 3, {"x", "step"}), 6.0));
  // As in torch's eval, where the variable is a local: it shadows math's names.
  EXPECT_TRUE(SameDouble(*CompileAndEval("e", 5, {"e"}), 5.0));
  EXPECT_TRUE(SameDouble(*CompileAndEval("e", 5, {}), 0x1.5bf0a8b145769p+1));
  EXPECT_EQ(CompileAndEval("min(1, 2)", 0, {"min"}).status().message(),
            "column 1: 'min' is not callable");
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(ExprTest, LengthAndDepthAreBounded) {
  EXPECT_TRUE(Expr::Compile("1" + std::string(Expr::kMaxSourceLength - 1, ' '), kVars).ok());
  EXPECT_EQ(Expr::Compile("1" + std::string(Expr::kMaxSourceLength, ' '), kVars).status().message(),
            "column 1025: expression longer than 1024 characters (1025)");

  const int d = Expr::kMaxDepth;
  const std::string too_deep = "expression nested too deeply (the limit is 32 levels)";
  struct Nest {
    std::string open, leaf, close;
    int levels;  // nesting levels per repetition
  };
  const Nest nests[] = {{"(", "1", ")", 1},          {"-", "1", "", 1},     {"+", "1", "", 1},
                        {"not ", "1", "", 1},        {"1 ** ", "1", "", 1}, {"abs(", "1", ")", 1},
                        {"min(1, ", "1", ")", 1},    {"(-", "1", ")", 2},   {"-2 ** ", "1", "", 2},
                        {"1 if 0 else ", "1", "", 1}};
  for (const Nest& n : nests) {
    const int reps = d / n.levels;
    const std::string ok = Repeat(n.open, reps) + n.leaf + Repeat(n.close, reps);
    EXPECT_TRUE(CompileAndEval(ok, 0).ok()) << ok << ": " << CompileAndEval(ok, 0).status();
    const std::string deep = Repeat(n.open, reps + 1) + n.leaf + Repeat(n.close, reps + 1);
    absl::StatusOr<double> r = CompileAndEval(deep, 0);
    ASSERT_FALSE(r.ok()) << deep;
    EXPECT_NE(r.status().message().find(too_deep), std::string::npos) << r.status();
  }
  // Hostile nesting far beyond the limit is refused (by length or depth) without recursing.
  for (const char* open : {"(", "-", "not ", "abs(", "2**"}) {
    EXPECT_FALSE(Expr::Compile(Repeat(open, 10000) + "1", kVars).ok());
    EXPECT_FALSE(Expr::Compile(Repeat(open, 1000 / std::strlen(open)) + "1", kVars).ok());
  }
  // Left-associative chains are flat, not deep: 512 terms evaluate.
  EXPECT_TRUE(SameDouble(*CompileAndEval(Repeat("1+", 511) + "1", 0), 512.0));
  EXPECT_TRUE(SameDouble(*CompileAndEval(Repeat("1<", 511) + "2", 0), 0.0));
  EXPECT_TRUE(SameDouble(*CompileAndEval("min(" + Repeat("7,", 509) + "1)", 0), 1.0));
  EXPECT_TRUE(SameDouble(*CompileAndEval(Repeat("epoch and ", 102) + "3", 2), 3.0));
}

TEST(ExprTest, EvalDoesNotAllocate) {
  std::vector<Expr> exprs;
  for (const char* s : {"epoch % 100 / 100.", "min(1.0, (epoch + 1) / 10)", "0.95 ** epoch",
                        "1 / (1.0 + x / 50)", "1 if epoch == 0 else 1 / epoch",
                        "max(log(epoch + 1, 2), sqrt(abs(epoch)), floor(epoch / 3))",
                        "0 < epoch < 10 and exp(-epoch) or cos(pi * epoch / 7) ** 2"}) {
    exprs.push_back(*Expr::Compile(s, kVars));
  }
  double sum = 0;
  EXPECT_EQ(test_support::AllocationsDuring([&] {
              for (int64_t arg = 0; arg < 200; ++arg) {
                for (const Expr& e : exprs) {
                  absl::StatusOr<double> r = e.Eval(arg);
                  if (r.ok()) sum += *r;
                }
              }
            }),
            0);
  EXPECT_TRUE(std::isfinite(sum));
}

TEST(ExprTest, CopiesShareTheProgramAndEvalIsThreadSafe) {
  const Expr a = *Expr::Compile("cos(pi * (epoch % 50) / 50) * 0.5 + 0.5", kVars);
  const Expr b = a;
  EXPECT_EQ(&a.source(), &b.source());
  EXPECT_EQ(b.source(), "cos(pi * (epoch % 50) / 50) * 0.5 + 0.5");
  std::vector<double> want;
  for (int64_t i = 0; i < 1000; ++i) want.push_back(*a.Eval(i));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const Expr mine = t % 2 == 0 ? a : b;
      for (int round = 0; round < 20; ++round) {
        for (int64_t i = 0; i < 1000; ++i) {
          if (Bits(*mine.Eval(i)) != Bits(want[i])) ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace lrsched
