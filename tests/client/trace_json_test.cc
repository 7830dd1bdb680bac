// Copyright lrsched authors.
//
// client/trace_json.h WriteTraceJson: the exact text of `lrsched simulate`'s output (members,
// separators, numbers in Python's repr), what nlohmann's tree of the same trace parses to, and
// that a long trace reaches the stream in bounded chunks, never as one document.
#include "client/trace_json.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "scheduler/json_text.h"

namespace lrsched {
namespace {

using nlohmann::json;

std::string Write(const Trace& t, const json& state_dict) {
  std::ostringstream out;
  absl::Status s = WriteTraceJson(t, state_dict, out);
  EXPECT_TRUE(s.ok()) << s;
  return out.str();
}

Trace TwoGroups() {
  Trace t;
  t.groups = 2;
  t.has_momentum = true;
  t.lr = {0.1, 1e-05, 0.09757729755661011, 1e-05, 1e15, 0.0001};
  t.momentum = {0.9, 0.0, 0.9, 0.0, 0.85, -0.0};
  return t;
}

TEST(TraceJsonTest, ExactTextWithMomentumAndStateDict) {
  json sd = {{"base_lrs", {0.1, 1e-05}}, {"last_epoch", 3}, {"_step_count", 4}};
  sd["verbose"] = false;
  sd["name"] = "a\"b";
  sd["eta_min"] = 0.0;
  EXPECT_EQ(Write(TwoGroups(), sd),
            R"({"lr":[[0.1,1e-05],[0.09757729755661011,1e-05],[1000000000000000.0,0.0001]],)"
            R"("momentum":[[0.9,0.0],[0.9,0.0],[0.85,-0.0]],)"
            R"("state_dict":{"_step_count":4,"base_lrs":[0.1,1e-05],"eta_min":0.0,)"
            R"("last_epoch":3,"name":"a\"b","verbose":false}})"
            "\n");
}

TEST(TraceJsonTest, RefusedStepHasErrorFirstAndNoStateDict) {
  Trace t;
  t.groups = 1;
  t.lr = {0.01, 0.05};
  t.error = absl::FailedPreconditionError("ValueError: Tried to step 5 times\n(\"total\")");
  t.error_at_step = 2;
  EXPECT_EQ(Write(t, json{{"last_epoch", 1}}),
            R"x({"error":"ValueError: Tried to step 5 times\n(\"total\")","error_at_step":2,)x"
            R"("lr":[[0.01],[0.05]]})"
            "\n");
}

TEST(TraceJsonTest, NoRowsNoStateDict) {
  Trace t;
  t.groups = 1;
  EXPECT_EQ(Write(t, json()), "{\"lr\":[]}\n");
}

// The document nlohmann writes for the same trace (what `simulate` printed before it streamed).
json TreeOf(const Trace& t, const json& state_dict) {
  auto rows = [&](const std::vector<double>& flat) {
    json out = json::array();
    for (size_t r = 0; r < t.rows(); ++r) {
      json row = json::array();
      for (size_t g = 0; g < t.groups; ++g) row.push_back(flat[r * t.groups + g]);
      out.push_back(row);
    }
    return out;
  };
  json out{{"lr", rows(t.lr)}};
  if (t.has_momentum) out["momentum"] = rows(t.momentum);
  if (!state_dict.is_null()) out["state_dict"] = state_dict;
  return out;
}

// Records the size of each piece the writer hands to the stream.
class ChunkSizes : public std::streambuf {
 public:
  std::vector<size_t> sizes;
  std::string text;

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    sizes.push_back(static_cast<size_t>(n));
    text.append(s, static_cast<size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) xsputn(reinterpret_cast<const char*>(&c), 1);
    return c;
  }
};

TEST(TraceJsonTest, LongTraceStreamsInBoundedChunksAndParsesToTheSameValues) {
  Trace t;
  t.groups = 3;
  t.has_momentum = true;
  for (int i = 0; i < 100000; ++i) {
    for (int g = 0; g < 3; ++g) {
      t.lr.push_back(0.1 / (1 + i % 97) * (g + 1));
      // Repeats, alternating with other values and with -0.0 vs 0.0 (same ==, other bits).
      t.momentum.push_back(g == 0 ? 0.9 : (g == 1 ? (i / 1000 % 2 ? -0.0 : 0.0) : i % 3 * 0.5));
    }
  }
  json sd = {{"last_epoch", 100000}, {"base_lrs", {0.1, 0.2, 0.3}}};
  ChunkSizes buf;
  std::ostream out(&buf);
  ASSERT_TRUE(WriteTraceJson(t, sd, out).ok());
  ASSERT_GT(buf.text.size(), 4u << 20);
  EXPECT_GT(buf.sizes.size(), 50u);
  EXPECT_LE(*std::max_element(buf.sizes.begin(), buf.sizes.end()), 80u * 1024);
  json got = json::parse(buf.text);
  EXPECT_EQ(got, TreeOf(t, sd));
  // -0.0 == 0.0 for json's operator==: check the signs the repeat cache wrote.
  EXPECT_TRUE(std::signbit(got["momentum"][1000][1].get<double>()));
  EXPECT_FALSE(std::signbit(got["momentum"][2000][1].get<double>()));
  // The same text as the whole tree written at once by the same number writer.
  std::string whole;
  json_text::AppendJson(TreeOf(t, sd), &whole);
  EXPECT_EQ(buf.text, whole + "\n");
}

TEST(TraceJsonTest, FailingStreamIsDataLoss) {
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  absl::Status s = WriteTraceJson(TwoGroups(), json(), out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
}

}  // namespace
}  // namespace lrsched
