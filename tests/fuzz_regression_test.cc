// Copyright lrsched authors.
//
// Replays the fuzzers' seed corpus (tests/fuzz/corpus/TARGET/) and every input that once crashed
// a fuzz target (tests/fuzz/regressions/TARGET/) through the fuzz entry points
// (tests/fuzz/fuzz_entry.h), in the normal build and under CI's sanitizer build. An entry point
// aborts on a broken invariant, so a regression fails this test by crashing it; the trace line
// printed before each input names the file.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/fuzz_entry.h"

namespace lrsched::fuzz {
namespace {

namespace fs = std::filesystem;
using Entry = void (*)(const uint8_t*, size_t);

// Every regular file of DIR/TARGET, sorted so a failure reproduces in the same order.
std::vector<fs::path> Inputs(const std::string& dir, const std::string& target) {
  std::vector<fs::path> out;
  fs::path d = fs::path(dir) / target;
  if (!fs::is_directory(d)) return out;
  for (const auto& e : fs::directory_iterator(d)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs every input of `target`; returns how many there were.
size_t Replay(const std::string& target, Entry entry) {
  size_t n = 0;
  for (const char* dir : {LRSCHED_FUZZ_DIR "/corpus", LRSCHED_FUZZ_DIR "/regressions"}) {
    for (const fs::path& p : Inputs(dir, target)) {
      std::ifstream f(p, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      // Printed before the run: if the entry point aborts, this is the input that did it.
      std::fprintf(stderr, "replaying %s\n", p.c_str());
      entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++n;
    }
  }
  return n;
}

TEST(FuzzRegressionTest, Expr) { EXPECT_GT(Replay("expr", FuzzExpr), 0u); }
TEST(FuzzRegressionTest, Spec) { EXPECT_GT(Replay("spec", FuzzSpec), 0u); }
TEST(FuzzRegressionTest, State) { EXPECT_GT(Replay("state", FuzzState), 0u); }
TEST(FuzzRegressionTest, Record) { EXPECT_GT(Replay("record", FuzzRecord), 0u); }
TEST(FuzzRegressionTest, Journal) { EXPECT_GT(Replay("journal", FuzzJournal), 0u); }

}  // namespace
}  // namespace lrsched::fuzz
