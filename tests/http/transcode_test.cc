// Copyright lrsched authors.
#include "server/http/transcode.h"

#include <cstring>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "lrsched/v1/lrsched.pb.h"

namespace lrsched::http {
namespace {

using Params = std::multimap<std::string, std::string>;

TEST(TranscodeTest, QueryParametersSetScalarsByEitherName) {
  v1::GetLRRequest r;
  ASSERT_TRUE(ApplyQuery(Params{{"ahead", "3"}, {"window", "8"}, {"consistent", "true"}}, &r).ok());
  EXPECT_EQ(r.ahead(), 3);
  EXPECT_EQ(r.window(), 8);
  EXPECT_TRUE(r.consistent());
  v1::GetHistoryRequest h;
  ASSERT_TRUE(
      ApplyQuery(Params{{"fromEpoch", "5"}, {"to_epoch", "9"}, {"pageToken", "t"}}, &h).ok());
  EXPECT_EQ(h.from_epoch(), 5);
  EXPECT_TRUE(h.has_to_epoch());  // an optional field gets its presence
  EXPECT_EQ(h.to_epoch(), 9);
  EXPECT_EQ(h.page_token(), "t");
}

TEST(TranscodeTest, QueryMapEntriesAndRepeatedFields) {
  v1::ListSessionsRequest r;
  ASSERT_TRUE(
      ApplyQuery(Params{{"labels[team]", "vision"}, {"labels[tier]", "a"}, {"labels[tier]", "b"}},
                 &r)
          .ok());
  EXPECT_EQ(r.labels().size(), 2u);
  EXPECT_EQ(r.labels().at("team"), "vision");
  EXPECT_EQ(r.labels().at("tier"), "b");  // the last one, as in a JSON object
  v1::SimulateRequest s;
  ASSERT_TRUE(ApplyQuery(Params{{"metrics", "0.5"}, {"metrics", "0.25"}}, &s).ok());
  ASSERT_EQ(s.metrics_size(), 2);
  EXPECT_EQ(s.metrics(1), 0.25);
}

TEST(TranscodeTest, QueryDoublesRoundTripBitEqual) {
  v1::StepRequest r;
  ASSERT_TRUE(ApplyQuery(Params{{"metric", "0.097552825814757688"}}, &r).ok());
  const double want = 0.097552825814757688, got = r.metric();
  EXPECT_EQ(std::memcmp(&want, &got, sizeof want), 0);
}

TEST(TranscodeTest, BadQueryParametersNameThemselves) {
  v1::GetLRRequest r;
  for (const auto& [key, value] : Params{{"ahead", "x"},
                                         {"window", "99999999999"},
                                         {"consistent", "maybe"},
                                         {"bogus", "1"},
                                         {"labels[a]", "b"}}) {
    absl::Status s = ApplyQuery(Params{{key, value}}, &r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_NE(s.message().find(key.substr(0, key.find('['))), std::string::npos) << s;
  }
  v1::ListSessionsRequest l;
  EXPECT_NE(ApplyQuery(Params{{"labels", "x"}}, &l).message().find("labels[KEY]=VALUE"),
            std::string::npos);
  v1::AmendSessionRequest a;
  EXPECT_NE(ApplyQuery(Params{{"scale", "2"}}, &a).message().find("JSON body"), std::string::npos);
}

TEST(TranscodeTest, BodiesParseEitherSpellingAndNameBadFields) {
  v1::StepRequest r;
  ASSERT_TRUE(ParseJsonBody(R"({"if_epoch": "4", "metric": 0.5})", &r).ok());
  EXPECT_EQ(r.if_epoch(), 4);
  EXPECT_EQ(r.metric(), 0.5);
  v1::StepRequest e;
  ASSERT_TRUE(ParseJsonBody("", &e).ok());
  ASSERT_TRUE(ParseJsonBody(" {} ", &e).ok());
  EXPECT_FALSE(e.has_if_epoch());
  absl::Status unknown = ParseJsonBody(R"({"bogus": 1})", &e);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("bogus"), std::string::npos) << unknown;
  absl::Status type = ParseJsonBody(R"({"ifEpoch": "soon"})", &e);
  EXPECT_NE(type.message().find("if_epoch"), std::string::npos) << type;
  absl::Status syntax = ParseJsonBody("{not json", &e);
  EXPECT_EQ(syntax.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(syntax.message().find("lrsched.v1.StepRequest"), std::string::npos) << syntax;
}

TEST(TranscodeTest, PathNameMustMatchTheBodys) {
  v1::StepRequest r;
  ASSERT_TRUE(SetPathName("runs/a", &r).ok());
  EXPECT_EQ(r.name(), "runs/a");
  ASSERT_TRUE(SetPathName("runs/a", &r).ok());  // the same name again
  absl::Status s = SetPathName("runs/b", &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("name"), std::string::npos);
  v1::SimulateRequest no_name;  // nothing to set
  EXPECT_TRUE(SetPathName("x", &no_name).ok());
}

TEST(TranscodeTest, PrintsDefaultsCamelCaseAndExactDoubles) {
  v1::GetLRResponse r;
  r.set_name("a");
  r.add_groups()->set_lr(0.097552825814757688);
  std::string json = PrintJson(r);
  EXPECT_NE(json.find(R"("lastEpoch":"0")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("scheduleRevision":"0")"), std::string::npos) << json;
  EXPECT_EQ(json.find("momentum"), std::string::npos) << json;  // optional and unset
  v1::GetLRResponse back;
  ASSERT_TRUE(ParseJsonBody(json, &back).ok());
  const double want = 0.097552825814757688, got = back.groups(0).lr();
  EXPECT_EQ(std::memcmp(&want, &got, sizeof want), 0) << json;
}

}  // namespace
}  // namespace lrsched::http
