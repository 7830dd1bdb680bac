// Copyright lrsched authors.
//
// The record of an amended session (issue #18): schedule_revision is kept (and a record written
// before it existed reads as revision 1, the session's creation), an amended schedule with its
// amendments and their meta (who, why, when) round-trips to the same bytes, and a
// schedule_revision the session cannot have is DATA_LOSS.
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/registry/amendment_meta.h"
#include "server/registry/record_frame.h"
#include "server/registry/session.h"

namespace lrsched {
namespace {

using nlohmann::json;

constexpr char kSpec[] =
    R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
        "scheduler": {"type": "CosineAnnealingLR", "T_max": 10}})";

std::unique_ptr<Schedule> Amended() {
  auto s = Schedule::Create(json::parse(kSpec));
  EXPECT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE((*s)->Step({}).ok());
  Amendment a;
  a.kind = Amendment::Kind::kScale;
  a.args = {{"factor", 0.5}};
  a.at_epoch = 3;
  a.meta = AmendmentMeta({5, absl::FromUnixSeconds(1764500000), "loss spike", "alice", "operator"});
  EXPECT_TRUE((*s)->Amend(a).ok());
  a.kind = Amendment::Kind::kContinueWith;
  a.args = {{"type", "LinearLR"}, {"start_factor", 1.0}, {"end_factor", 0.0}, {"total_iters", 4}};
  a.at_epoch = 6;
  a.meta = AmendmentMeta({6, absl::FromUnixSeconds(1764500100), "cool down", "", ""});
  EXPECT_TRUE((*s)->Amend(a).ok());
  return *std::move(s);
}

SessionMeta Meta() {
  SessionMeta m;
  m.name = "runs/amended";
  m.revision = 6;
  m.schedule_revision = 6;
  m.create_time = absl::FromUnixSeconds(1764400000);
  m.update_time = absl::FromUnixSeconds(1764500100);
  return m;
}

// `record` with its body replaced by `body` (re-framed and re-checksummed).
std::string Reframed(const json& body) {
  std::string text;
  BeginRecord(&text);
  text.append(body.dump());
  SealRecord(&text);
  return text;
}

TEST(AmendRecordTest, AnAmendedSessionRoundTripsWithItsAmendmentsAndRevision) {
  std::unique_ptr<Schedule> s = Amended();
  auto record = EncodeRecord(Meta(), *s);
  ASSERT_TRUE(record.ok()) << record.status();
  auto decoded = DecodeRecord(*record);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->meta.schedule_revision, 6);
  ASSERT_EQ(decoded->schedule->amendments().size(), 2u);
  const AmendmentRecord who = ReadAmendmentMeta(decoded->schedule->amendments()[0].meta);
  EXPECT_EQ(who.revision, 5);
  EXPECT_EQ(who.reason, "loss spike");
  EXPECT_EQ(who.caller, "alice");
  EXPECT_EQ(who.role, "operator");
  EXPECT_EQ(who.time, absl::FromUnixSeconds(1764500000));
  EXPECT_EQ(RecordedRevision(decoded->schedule->amendments()[1]), 6);
  auto again = EncodeRecord(decoded->meta, *decoded->schedule);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *record);
  // It goes on as the original does, the pending continue_with included.
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(s->Step({}).ok());
    ASSERT_TRUE(decoded->schedule->Step({}).ok());
    EXPECT_EQ(s->param_groups()[0].lr, decoded->schedule->param_groups()[0].lr) << i;
  }
}

TEST(AmendRecordTest, ARecordWithoutScheduleRevisionReadsAsItsCreation) {
  auto s = Schedule::Create(json::parse(kSpec));
  ASSERT_TRUE(s.ok());
  SessionMeta meta = Meta();
  meta.schedule_revision = 4;
  auto record = EncodeRecord(meta, **s);
  ASSERT_TRUE(record.ok());
  json body = json::parse(record->substr(kRecordHeaderBytes));
  ASSERT_EQ(body["schedule_revision"], 4);
  body.erase("schedule_revision");
  auto old = DecodeRecord(Reframed(body));
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->meta.schedule_revision, 1);
  EXPECT_EQ(old->meta.revision, 6);

  for (const json& bad : {json(0), json(7), json("4"), json(-1)}) {
    body["schedule_revision"] = bad;
    auto refused = DecodeRecord(Reframed(body));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << bad;
  }
}

}  // namespace
}  // namespace lrsched
