// Copyright lrsched authors.
//
// Randomized tests of Expr, deterministic (fixed seeds, our own PRNG):
//  - robustness: random bytes and random token soups compile or fail cleanly, and whatever
//    compiles evaluates or fails cleanly (INVALID_ARGUMENT with a message; no crash, no hang);
//  - differential: random expressions are run through Expr and, all at once, through Debian's
//    /usr/bin/python3 with the environment torch_trace.py's `lam` uses, and must agree bit for
//    bit, or raise the same exception with the same message.
// The Python side mirrors the two places where Expr deliberately differs from CPython (see
// pynum.h): an int result outside int64 raises "OverflowError: integer overflow", and a
// complex result of ** raises "ValueError: complex result".
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "scheduler/internal/expr.h"

namespace lrsched {
namespace {

using scheduler_internal::Expr;

const std::vector<std::string> kVars = {"epoch", "step", "x"};
const int64_t kArgs[] = {-3, 0, 1, 7, 1000000000000};

// SplitMix64: the same sequence on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  int Below(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }
  bool Percent(int p) { return Below(100) < p; }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(static_cast<int>(N))];
  }

 private:
  uint64_t state_;
};

// "ok <bits>", "nan" or "err <message>": the form the Python harness prints.
std::string Outcome(const absl::StatusOr<double>& r) {
  if (!r.ok()) return absl::StrCat("err ", r.status().message());
  if (*r != *r) return "nan";
  uint64_t bits;
  std::memcpy(&bits, &*r, sizeof bits);
  char buf[32];
  std::snprintf(buf, sizeof buf, "ok %016" PRIx64, bits);
  return buf;
}

// Compiles and evaluates `source` for every kArgs; returns the outcomes, or an empty vector if
// it does not compile (then *compile_error holds the message). Records malformed errors.
std::vector<std::string> Exercise(const std::string& source, std::string* compile_error,
                                  std::vector<std::string>* problems) {
  const auto check = [&](const absl::Status& s) {
    if (s.code() != absl::StatusCode::kInvalidArgument || s.message().empty()) {
      problems->push_back(
          absl::StrCat("bad error for '", absl::CEscape(source), "': ", s.ToString()));
    }
  };
  absl::StatusOr<Expr> e = Expr::Compile(source, kVars);
  if (!e.ok()) {
    check(e.status());
    *compile_error = std::string(e.status().message());
    return {};
  }
  std::vector<std::string> outcomes;
  for (int64_t arg : kArgs) {
    absl::StatusOr<double> r = e->Eval(arg);
    if (!r.ok()) check(r.status());
    outcomes.push_back(Outcome(r));
  }
  return outcomes;
}

// clang-format off
constexpr const char* kSoupTokens[] = {
    "0", "1", "2", "7", "10", "100", "1.", ".5", "0.95", "1e-3", "1E+3", "1_000", "0x1F", "1e400",
    "9223372036854775807", "9223372036854775808", "epoch", "step", "x", "e", "pi", "True",
    "False", "foo", "min", "max", "abs", "floor", "ceil", "exp", "log", "sqrt", "sin", "cos",
    "tan", "tanh", "+", "-", "*", "/", "%", "**", "//", "<", "<=", ">", ">=", "==", "!=", "(",
    "(", ")", ")", ",", "if", "else", "and", "or", "not"};
// clang-format on

std::string TokenSoup(Rng& rng) {
  std::string s;
  const int n = 1 + rng.Below(rng.Percent(5) ? 300 : 14);
  const bool tight = rng.Percent(15);  // no spaces: "1if", "epoch**2", "1else"
  for (int i = 0; i < n; ++i) {
    if (i > 0 && !tight) s += ' ';
    s += rng.Pick(kSoupTokens);
  }
  return s;
}

// Random bytes; if `lexical`, only ASCII characters that matter to the tokenizer.
std::string RandomBytes(Rng& rng, bool lexical, int max_len) {
  static constexpr char kLexical[] =
      "0123456789.eE_xXjJ+-*/%()<>=!, \t\n\f\r#\\abcdefgilmnoprstxy'\"[]";
  std::string s;
  for (int n = rng.Below(max_len + 1); n > 0; --n) {
    s += lexical ? kLexical[rng.Below(sizeof kLexical - 1)] : static_cast<char>(rng.Below(256));
  }
  return s;
}

TEST(ExprFuzzTest, RandomInputsFailCleanly) {
  Rng rng(20240611);
  std::vector<std::string> problems;
  int compiled = 0;
  for (int i = 0; i < 6000; ++i) {
    const std::string source =
        i % 2 == 1 ? TokenSoup(rng) : RandomBytes(rng, rng.Percent(60), rng.Percent(2) ? 1100 : 48);
    std::string error;
    if (!Exercise(source, &error, &problems).empty()) ++compiled;
  }
  EXPECT_GT(compiled, 50);  // the soups do reach the evaluator
  EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
}

// Random expressions from the grammar (expr.h), nesting at most `fuel` levels.
class Generator {
 public:
  explicit Generator(Rng& rng) : rng_(rng) {}

  std::string Expression(int fuel) {
    std::string s = Chain(fuel, " or ", &Generator::Conjunction);
    if (fuel > 0 && rng_.Percent(10)) {
      s += " if " + Chain(fuel - 1, " or ", &Generator::Conjunction) + " else " +
           Expression(fuel - 1);
    }
    return s;
  }

 private:
  using Production = std::string (Generator::*)(int);

  // item (sep item)*, the items after the first one level shallower.
  std::string Chain(int fuel, const char* sep, Production item) {
    std::string s = (this->*item)(fuel);
    for (int n = fuel > 0 && rng_.Percent(12) ? 1 + rng_.Below(2) : 0; n > 0; --n) {
      s += sep + (this->*item)(fuel - 1);
    }
    return s;
  }
  std::string Conjunction(int fuel) { return Chain(fuel, " and ", &Generator::Inversion); }
  std::string Inversion(int fuel) {
    if (fuel > 0 && rng_.Percent(6)) return "not " + Inversion(fuel - 1);
    return Comparison(fuel);
  }
  std::string Comparison(int fuel) {
    static constexpr const char* kOps[] = {" < ", " <= ", " > ", " >= ", " == ", " != "};
    std::string s = Sum(fuel);
    for (int n = fuel > 0 && rng_.Percent(15) ? 1 + rng_.Below(2) : 0; n > 0; --n) {
      s += rng_.Pick(kOps) + Sum(fuel - 1);
    }
    return s;
  }
  std::string Sum(int fuel) {
    std::string s = Term(fuel);
    for (int n = fuel > 0 ? rng_.Below(3) : 0; n > 0; --n) {
      s += (rng_.Percent(50) ? " + " : " - ") + Term(fuel - 1);
    }
    return s;
  }
  std::string Term(int fuel) {
    static constexpr const char* kOps[] = {" * ", " / ", " % "};
    std::string s = Factor(fuel);
    for (int n = fuel > 0 ? rng_.Below(3) : 0; n > 0; --n) s += rng_.Pick(kOps) + Factor(fuel - 1);
    return s;
  }
  std::string Factor(int fuel) {
    if (fuel > 0 && rng_.Percent(15)) return (rng_.Percent(80) ? "-" : "+") + Factor(fuel - 1);
    std::string s = Primary(fuel);
    if (fuel > 0 && rng_.Percent(15)) s += " ** " + Factor(fuel - 1);
    return s;
  }
  std::string Primary(int fuel) {
    if (fuel <= 0 || rng_.Percent(45)) return Leaf();
    if (rng_.Percent(50)) return "(" + Expression(fuel - 1) + ")";
    struct Fn {
      const char* name;
      int min_args, max_args;
    };
    static constexpr Fn kFns[] = {{"min", 2, 3},  {"max", 2, 3}, {"abs", 1, 1}, {"floor", 1, 1},
                                  {"ceil", 1, 1}, {"exp", 1, 1}, {"log", 1, 2}, {"sqrt", 1, 1},
                                  {"sin", 1, 1},  {"cos", 1, 1}, {"tan", 1, 1}, {"tanh", 1, 1}};
    const Fn& fn = rng_.Pick(kFns);
    std::string s = std::string(fn.name) + "(";
    const int nargs = fn.min_args + rng_.Below(fn.max_args - fn.min_args + 1);
    for (int i = 0; i < nargs; ++i) s += (i > 0 ? ", " : "") + Expression(fuel - 1);
    return s + ")";
  }
  std::string Leaf() {
    static constexpr const char* kLeaves[] = {"0",
                                              "1",
                                              "2",
                                              "3",
                                              "7",
                                              "10",
                                              "100",
                                              "255",
                                              "1_000",
                                              "0x1F",
                                              "4611686018427387905",
                                              "9007199254740993",
                                              "5258986265376043509",
                                              "9223372036854775807",
                                              "0.5",
                                              "1.",
                                              "2.5",
                                              ".25",
                                              "1e-3",
                                              "0.95",
                                              "1e300",
                                              "3.7",
                                              "0.1",
                                              "1e400",
                                              "123.456",
                                              "5e-324",
                                              "1e22",
                                              "0.0",
                                              "epoch",
                                              "epoch",
                                              "epoch",
                                              "step",
                                              "x",
                                              "pi",
                                              "e",
                                              "True",
                                              "False"};
    if (rng_.Percent(15)) return std::to_string(rng_.Below(64));
    return rng_.Pick(kLeaves);
  }

  Rng& rng_;
};

// A valid expression with a token or two deleted, inserted, replaced or duplicated.
std::string Mutant(Rng& rng, Generator& gen) {
  std::vector<std::string> toks = absl::StrSplit(gen.Expression(1 + rng.Below(3)), ' ');
  for (int m = 1 + rng.Below(2); m > 0; --m) {
    const size_t at = rng.Below(static_cast<int>(toks.size()));
    switch (rng.Below(4)) {
      case 0:
        toks.erase(toks.begin() + at);
        break;
      case 1:
        toks.insert(toks.begin() + at, rng.Pick(kSoupTokens));
        break;
      case 2:
        toks[at] = rng.Pick(kSoupTokens);
        break;
      default:
        toks.insert(toks.begin() + at, toks[rng.Below(static_cast<int>(toks.size()))]);
    }
    if (toks.empty()) toks.push_back("1");
  }
  return absl::StrJoin(toks, rng.Percent(10) ? "" : " ");
}

// Evaluates each line of argv[1] for every argument as torch_trace.py's lam would, printing one
// outcome per (line, argument) in the form of Outcome() above.
constexpr char kHarness[] = R"PY(
import ast, math, struct, sys, warnings
warnings.filterwarnings("ignore")
LO, HI = -2**63, 2**63 - 1
def ck(v):
    if isinstance(v, int) and not LO <= v <= HI:
        raise OverflowError("integer overflow")
    return v
def pw(a, b):
    if isinstance(a, int) and isinstance(b, int) and b > 64 and abs(a) > 1:
        raise OverflowError("integer overflow")  # before Python builds a giant int
    r = a ** b
    if isinstance(r, complex):
        raise ValueError("complex result")
    return ck(r)
ENV = {k: getattr(math, k) for k in ("cos", "sin", "tan", "exp", "log", "sqrt", "tanh", "pi", "e")}
ENV.update(min=min, max=max, abs=lambda v: ck(abs(v)), floor=lambda v: ck(math.floor(v)),
           ceil=lambda v: ck(math.ceil(v)), _add=lambda a, b: ck(a + b),
           _sub=lambda a, b: ck(a - b), _mul=lambda a, b: ck(a * b), _div=lambda a, b: a / b,
           _mod=lambda a, b: ck(a % b), _pow=pw, _neg=lambda a: ck(-a))
OPS = {ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.Div: "_div", ast.Mod: "_mod",
       ast.Pow: "_pow"}
class Checked(ast.NodeTransformer):
    def visit_BinOp(self, node):
        self.generic_visit(node)
        if type(node.op) not in OPS:
            return node
        call = ast.Call(ast.Name(OPS[type(node.op)], ast.Load()), [node.left, node.right], [])
        return ast.copy_location(call, node)
    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, ast.USub):
            return node
        return ast.copy_location(ast.Call(ast.Name("_neg", ast.Load()), [node.operand], []), node)
ARGS = [int(a) for a in sys.argv[2].split(",")]
out = []
for line in open(sys.argv[1]).read().split("\n")[:-1]:
    src = bytes.fromhex(line).decode()
    try:
        compile(src, "<expr>", "eval")  # exactly torch_trace's check
        code = compile(ast.fix_missing_locations(Checked().visit(ast.parse(src, mode="eval"))),
                       "<expr>", "eval")
    except (SyntaxError, ValueError):
        out += ["syntax"] * len(ARGS)
        continue
    for a in ARGS:
        try:
            v = float(eval(code, {"__builtins__": {}}, dict(ENV, epoch=a, step=a, x=a)))
            out.append("nan" if v != v else "ok %016x" % struct.unpack("<Q", struct.pack("<d", v))[0])
        except Exception as ex:
            out.append("err %s: %s" % (type(ex).__name__, ex))
print("\n".join(out))
)PY";

// Runs the harness on `sources` and returns its outcomes (kArgs per source), or an error.
absl::StatusOr<std::vector<std::string>> RunPython(const std::vector<std::string>& sources) {
  const std::string base = absl::StrCat(::testing::TempDir(), "expr_fuzz_", getpid());
  std::ofstream(base + ".py") << kHarness;
  {
    std::ofstream lines(base + ".txt");
    for (const std::string& s : sources) {
      for (unsigned char c : s) lines << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
      lines << "\n";
    }
  }
  std::vector<std::string> args;
  for (int64_t a : kArgs) args.push_back(std::to_string(a));
  const std::string cmd =
      absl::StrCat("/usr/bin/python3 ", base, ".py ", base, ".txt ", absl::StrJoin(args, ","));
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen failed");
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  std::remove((base + ".py").c_str());
  std::remove((base + ".txt").c_str());
  if (status != 0) return absl::InternalError(absl::StrCat("python3 exited with ", status));
  std::vector<std::string> outcomes = absl::StrSplit(output, '\n', absl::SkipEmpty());
  return outcomes;
}

// Our compile errors for sources Python accepts, by design: static name and arity checks,
// int64 literals, the depth limit, and constructs outside the language.
bool IsDeliberateRejection(const std::string& message) {
  for (const char* s : {"unknown name", "unknown function", "not callable", "must be called",
                        "can be called", "takes", "too large", "too deeply", "'//'", "tuples",
                        "empty parentheses", "not supported"}) {
    if (message.find(s) != std::string::npos) return true;
  }
  return false;
}

TEST(ExprFuzzTest, AgreesWithCPython) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 is not installed";
  Rng rng(7);
  Generator gen(rng);
  std::vector<std::string> sources;
  for (int i = 0; i < 4000; ++i) sources.push_back(gen.Expression(1 + rng.Below(5)));
  for (int i = 0; i < 2000; ++i) sources.push_back(TokenSoup(rng));
  for (int i = 0; i < 2000; ++i) sources.push_back(Mutant(rng, gen));
  for (int i = 0; i < 3000; ++i) sources.push_back(RandomBytes(rng, true, 12));
  sources.erase(
      std::remove_if(sources.begin(), sources.end(),
                     [](const std::string& s) { return s.size() > Expr::kMaxSourceLength; }),
      sources.end());

  std::vector<std::string> problems;
  std::vector<std::vector<std::string>> ours;
  std::vector<std::string> errors;
  for (const std::string& s : sources) {
    errors.emplace_back();
    ours.push_back(Exercise(s, &errors.back(), &problems));
  }
  absl::StatusOr<std::vector<std::string>> python = RunPython(sources);
  ASSERT_TRUE(python.ok()) << python.status();
  const size_t n_args = std::size(kArgs);
  ASSERT_EQ(python->size(), sources.size() * n_args);

  int compared = 0, values = 0;
  for (size_t i = 0; i < sources.size() && problems.size() < 20; ++i) {
    const std::string* py = &(*python)[i * n_args];
    if (ours[i].empty()) {  // we refused to compile it
      if (py[0] != "syntax" && !IsDeliberateRejection(errors[i])) {
        problems.push_back(absl::StrCat("'", absl::CEscape(sources[i]), "': we say '", errors[i],
                                        "', Python compiles it (", py[0], ")"));
      }
      continue;
    }
    for (size_t k = 0; k < n_args; ++k) {
      ++compared;
      if (ours[i][k].rfind("ok", 0) == 0) ++values;
      if (ours[i][k] != py[k]) {
        problems.push_back(absl::StrCat("'", absl::CEscape(sources[i]), "' at ", kArgs[k],
                                        ": we say ", ours[i][k], ", Python says ", py[k]));
      }
    }
  }
  EXPECT_GT(compared, 10000);
  EXPECT_GT(values, compared / 3);  // most comparisons are of numbers, not of errors
  EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
}

}  // namespace
}  // namespace lrsched
