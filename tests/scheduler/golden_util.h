// Copyright lrsched authors.
//
// Loads the golden traces (tests/data/*.jsonl, one torch-traced case per line) for the parity
// and state tests. The data directory is compiled in (LRSCHED_TEST_DATA) so that test
// discovery, which runs the binary, finds it too.
#ifndef LRSCHED_TESTS_GOLDEN_UTIL_H_
#define LRSCHED_TESTS_GOLDEN_UTIL_H_

#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace lrsched::test_support {

struct GoldenCase {
  std::string file;
  int line = 0;
  nlohmann::json j;
  std::string name() const { return j.value("name", "?"); }
};

inline std::vector<GoldenCase> LoadGolden(const std::string& file) {
  std::vector<GoldenCase> out;
  std::ifstream in(std::string(LRSCHED_TEST_DATA) + "/" + file);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    out.push_back(GoldenCase{file, n, nlohmann::json::parse(line)});
  }
  return out;
}

// Test-name-safe form of a case name ("seed/StepLR" -> "seed_StepLR").
inline std::string SafeName(const std::string& s) {
  std::string o;
  for (char c : s) o += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return o;
}

// Every golden file: torch 1.13's traces, lrsched's extra torch cases, and the traces of
// transformers', timm's and Megatron's own scheduler code (beyond-traces.jsonl, issue #17).
inline std::vector<GoldenCase> AllGolden() {
  std::vector<GoldenCase> all;
  for (const char* file :
       {"torch-1.13-traces.jsonl", "lrsched-extra-traces.jsonl", "beyond-traces.jsonl"}) {
    for (auto& c : LoadGolden(file)) all.push_back(std::move(c));
  }
  return all;
}

// A gtest parameter name for a case: its name, line and a file mark ("x" extra, "b" beyond).
inline std::string CaseTestName(const GoldenCase& c) {
  std::string mark = c.file.find("extra") != std::string::npos    ? "x"
                     : c.file.find("beyond") != std::string::npos ? "b"
                                                                  : "";
  return SafeName(c.name()) + "_L" + std::to_string(c.line) + mark;
}

inline std::vector<double> Numbers(const nlohmann::json& j, const char* key) {
  std::vector<double> v;
  if (j.contains(key)) {
    // null: no value at that step (timm's Plateau called without a metric); Simulate reads NaN
    // so.
    for (const auto& x : j[key]) {
      v.push_back(x.is_null() ? std::numeric_limits<double>::quiet_NaN() : x.get<double>());
    }
  }
  return v;
}

}  // namespace lrsched::test_support

#endif  // LRSCHED_TESTS_GOLDEN_UTIL_H_
