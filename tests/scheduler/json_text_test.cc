// Copyright lrsched authors.
//
// scheduler/json_text.h: what it writes parses back to the same value, doubles bit for bit,
// and reads as the same JSON kind (float stays float) as nlohmann's own dump.
#include "scheduler/json_text.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

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
  // The same value nlohmann's dump gives (its text may differ: both are shortest forms).
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
