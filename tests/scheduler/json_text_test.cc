// Copyright lrsched authors.
//
// scheduler/json_text.h: what it writes parses back to the same value, doubles bit for bit,
// and reads as the same JSON kind (float stays float) as nlohmann's own dump; doubles are
// written in exactly Python's repr text (checked against /usr/bin/python3 itself where it is
// installed); a tree is written as nlohmann's dump() writes it.
#include "scheduler/json_text.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace lrsched::json_text {
namespace {

using nlohmann::json;

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

void ExpectRoundTrip(double v) {
  std::string text;
  AppendDouble(v, &text);
  json j = json::parse(text);
  ASSERT_TRUE(j.is_number_float()) << text;
  EXPECT_EQ(Bits(j.get<double>()), Bits(v)) << text;
  // The same value nlohmann's dump gives (its text may differ: Grisu2 is not always shortest).
  EXPECT_EQ(Bits(json::parse(json(v).dump()).get<double>()), Bits(v));
}

TEST(JsonTextTest, DoublesRoundTripBitExactlyAndStayFloats) {
  for (double v : {0.0, -0.0, 1.0, -1.0, 0.1, 1.0 / 3, 1e-5, 1e22, 1e23, 123456789.0, 0.5e-323,
                   std::numeric_limits<double>::min(), std::numeric_limits<double>::max(),
                   std::numeric_limits<double>::lowest(), std::numeric_limits<double>::epsilon(),
                   0.09999999999999948, 1e16, 9007199254740993.0}) {
    SCOPED_TRACE(v);
    ExpectRoundTrip(v);
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    uint64_t b = rng();
    double v;
    std::memcpy(&v, &b, sizeof v);
    if (!std::isfinite(v)) continue;
    ExpectRoundTrip(v);
  }
}

std::string Text(double v) {
  std::string text;
  AppendDouble(v, &text);
  return text;
}

TEST(JsonTextTest, DoublesAreWrittenAsPythonsRepr) {
  // Each pair: the value and repr(value) in CPython 3.11.
  const std::pair<double, const char*> kCases[] = {
      {0.1, "0.1"},
      {1e-05, "1e-05"},
      {2.5e-05, "2.5e-05"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {5e-324, "5e-324"},
      {2.2250738585072014e-308, "2.2250738585072014e-308"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {-1.7976931348623157e308, "-1.7976931348623157e+308"},
      {1.0, "1.0"},
      {-1.0, "-1.0"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {100.0, "100.0"},
      {1000000.0, "1000000.0"},
      {123.456, "123.456"},
      {1.5, "1.5"},
      {1.0 / 3, "0.3333333333333333"},
      {0.1 + 0.2, "0.30000000000000004"},
      {0.09999999999999948, "0.09999999999999948"},
      {0.09757729755661011, "0.09757729755661011"},
      {1e15, "1000000000000000.0"},
      {9999999999999998.0, "9999999999999998.0"},
      {4058291118897495.5, "4058291118897495.5"},
      {1e16, "1e+16"},
      {1.5e16, "1.5e+16"},
      {123456789012345680.0, "1.2345678901234568e+17"},
      {9007199254740993.0, "9007199254740992.0"},
      {1e22, "1e+22"},
      {1e23, "1e+23"},
      {1e100, "1e+100"},
      {-2.5e-300, "-2.5e-300"},
      // Where nlohmann's Grisu2 writes 17 digits, or other digits, than repr's.
      {0.005481883759619863, "0.005481883759619863"},
      {1.487414757680051e-08, "1.487414757680051e-08"},
      {670225579869032.2, "670225579869032.2"},
  };
  for (const auto& [v, want] : kCases) EXPECT_EQ(Text(v), want) << want;
}

// Runs /usr/bin/python3 over `bits` (hex, one a line) and returns repr() of each.
std::vector<std::string> PythonReprs(const std::vector<uint64_t>& bits) {
  std::string in = testing::TempDir() + "/json_text_bits.txt";
  std::string out = testing::TempDir() + "/json_text_reprs.txt";
  {
    std::ofstream f(in);
    for (uint64_t b : bits) f << std::hex << b << "\n";
  }
  std::string cmd =
      "/usr/bin/python3 -c 'import struct,sys\n"
      "for l in open(sys.argv[1]): "
      "print(repr(struct.unpack(\"<d\", int(l, 16).to_bytes(8, \"little\"))[0]))' " +
      in + " > " + out;
  std::vector<std::string> reprs;
  if (std::system(cmd.c_str()) != 0) return reprs;
  std::ifstream f(out);
  for (std::string line; std::getline(f, line);) reprs.push_back(line);
  return reprs;
}

TEST(JsonTextTest, RandomDoublesMatchPythonsRepr) {
  if (std::ifstream("/usr/bin/python3").fail()) GTEST_SKIP() << "no /usr/bin/python3";
  std::mt19937_64 rng(17);
  std::vector<uint64_t> bits;
  while (bits.size() < 6000) {
    double v;
    if (bits.size() % 2 == 0) {  // any finite double
      uint64_t b = rng();
      std::memcpy(&v, &b, sizeof v);
    } else {  // learning-rate-like magnitudes, 1e-12 .. 1e4, and the 1e15 .. 1e17 boundary
      double mant = std::ldexp(static_cast<double>(rng() >> 11), -53);
      int exp10 = bits.size() % 10 == 1 ? 15 + static_cast<int>(rng() % 2)
                                        : static_cast<int>(rng() % 17) - 12;
      v = mant * std::pow(10.0, exp10);
    }
    if (std::isfinite(v)) bits.push_back(Bits(v));
  }
  std::vector<std::string> reprs = PythonReprs(bits);
  ASSERT_EQ(reprs.size(), bits.size()) << "running /usr/bin/python3 failed";
  int wrong = 0;
  for (size_t i = 0; i < bits.size(); ++i) {
    double v;
    std::memcpy(&v, &bits[i], sizeof v);
    if (Text(v) != reprs[i] && ++wrong <= 10) {
      ADD_FAILURE() << "bits " << std::hex << bits[i] << ": " << Text(v) << " != " << reprs[i];
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST(JsonTextTest, TreesAreWrittenAsNlohmannDumpsThem) {
  json j = json::parse(R"({"b": [1, -2, 18446744073709551615, true, false, null, "x\ty"],
                           "a": {"z": 0.25, "e": {}, "l": [], "n": [[1.0, 2.5e-07]]},
                           "\u00e9": "caf\u00e9"})");
  std::string text;
  AppendJson(j, &text);
  EXPECT_EQ(text, j.dump());
  // Floats are AppendDouble's: nlohmann's dump writes 1e15 as "1e+15", Python's repr as here.
  text.clear();
  AppendJson(json{{"x", 1e15}}, &text);
  EXPECT_EQ(text, R"({"x":1000000000000000.0})");
}

TEST(JsonTextTest, NonFiniteDoublesAreNullAsNlohmannWritesThem) {
  for (double v :
       {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
        std::numeric_limits<double>::quiet_NaN()}) {
    std::string text;
    AppendDouble(v, &text);
    EXPECT_EQ(text, json(v).dump());
  }
}

TEST(JsonTextTest, IntsAtTheLimits) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{42}, std::numeric_limits<int64_t>::max(),
                    std::numeric_limits<int64_t>::min()}) {
    std::string text;
    AppendInt(v, &text);
    EXPECT_EQ(text, json(v).dump());
  }
  for (uint64_t v : {uint64_t{0}, std::numeric_limits<uint64_t>::max()}) {
    std::string text;
    AppendUint(v, &text);
    EXPECT_EQ(text, json(v).dump());
  }
}

TEST(JsonTextTest, StringsAreEscapedAsJsonRequires) {
  std::string all;
  for (int c = 0; c < 256; ++c) {
    if (c < 0x80) all.push_back(static_cast<char>(c));
  }
  all += "\xc3\xa9 \xe2\x82\xac";  // UTF-8 passes through
  std::string text;
  AppendString(all, &text);
  EXPECT_EQ(json::parse(text).get<std::string>(), all);
  EXPECT_EQ(text, json(all).dump());  // the same escapes as nlohmann's
  std::string key;
  AppendKey("a\"b", &key);
  EXPECT_EQ(key, "\"a\\\"b\":");
}

}  // namespace
}  // namespace lrsched::json_text
