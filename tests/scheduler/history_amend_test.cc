// Copyright lrsched authors.
//
// Schedule::History through amendments (issue #18): the replay of the derived record makes the
// live schedule's amendments (continue_with, reparameterize, scale; at once and pending) so that
// it gives, bit for bit, what the live schedule gave; change runs keep what an amendment applied
// at once changed at the current epoch; export/import and an old export keep it.
#include <cstring>
#include <map>

#include "gtest/gtest.h"
#include "scheduler/schedule.h"
#include "tests/scheduler/history_util.h"
#include "tests/scheduler/step_requests.h"

namespace lrsched {
namespace {

using nlohmann::json;

// A schedule with what it served at each epoch it stood at (the latest values).
struct Session {
  std::unique_ptr<Schedule> s;
  test_support::Live live;

  explicit Session(const json& spec) {
    auto c = Schedule::Create(spec);
    EXPECT_TRUE(c.ok()) << c.status();
    s = *std::move(c);
    Note();
  }
  void Note() { live.Note(*s); }
  void Steps(int n, const StepRequest& r = {}) {
    for (int i = 0; i < n; ++i) {
      absl::Status st = s->Step(r);
      ASSERT_TRUE(st.ok()) << st;
      Note();
    }
  }
  void Amend(Amendment::Kind kind, int64_t at, json args) {
    Amendment a;
    a.kind = kind;
    a.at_epoch = at;
    a.args = std::move(args);
    auto r = s->Amend(a);
    ASSERT_TRUE(r.ok()) << r.status();
    Note();  // applied at once: the current epoch's values changed
  }
  void ExpectHistoryIsLive(const std::string& what) const {
    test_support::ExpectHistoryIsLive(*s, live, what);
  }
  // The server's way: state text with the spec spliced in, imported.
  void ExportImport(bool drop_record = false) {
    json state = s->ExportState();
    if (drop_record) state.erase("record");
    auto imported = Schedule::ImportState(json::parse(state.dump()));
    ASSERT_TRUE(imported.ok()) << imported.status();
    s = *std::move(imported);
  }
};

json Cosine() {
  return json{
      {"optimizer",
       {{"type", "SGD"},
        {"param_groups", {{{"lr", 0.1}, {"momentum", 0.9}}, {{"lr", 0.2}, {"momentum", 0.8}}}}}},
      {"scheduler", {{"type", "CosineAnnealingLR"}, {"T_max", 100}, {"eta_min", 0.001}}}};
}

using K = Amendment::Kind;

TEST(HistoryAmend, EveryKindAtOnceAndPendingReplays) {
  Session x(Cosine());
  x.Steps(30);
  x.Amend(K::kReparameterize, 30, {{"T_max", 300}});  // extend the horizon now
  x.Steps(20);
  x.Amend(K::kScale, 60, {{"factor", 0.5}, {"groups", {1}}});  // pending
  x.Steps(20);
  x.Amend(K::kContinueWith, 80,
          {{"type", "LinearLR"}, {"start_factor", 1.0}, {"end_factor", 0.0}, {"total_iters", 30}});
  x.Steps(15);
  x.Amend(K::kScale, 85, {{"factor", 2.0}});  // at once, inside the continue_with piece
  x.Steps(25);
  ASSERT_EQ(x.s->amendments().size(), 4u);
  EXPECT_FALSE(x.s->ExportState()["record"].contains("changes"));
  x.ExpectHistoryIsLive("amended");
  x.ExportImport();
  x.Steps(10);
  x.ExpectHistoryIsLive("amended, imported");
}

TEST(HistoryAmend, AmendmentMadeAfterAnEarlierOneApplied) {
  // The reparameterize names LinearLR's total_iters: valid only once the continue_with is in
  // force, so the replay must make it after the continue_with applied, as the live one did.
  Session x(Cosine());
  x.Steps(10);
  x.Amend(K::kContinueWith, 50,
          {{"type", "LinearLR"}, {"start_factor", 1.0}, {"end_factor", 0.1}, {"total_iters", 20}});
  x.Steps(45);  // at 55
  x.Amend(K::kReparameterize, 60, {{"total_iters", 40}});
  x.Amend(K::kReparameterize, 60, {{"end_factor", 0.5}});  // same epoch: order made
  x.Steps(30);
  x.ExpectHistoryIsLive("two pieces");
}

TEST(HistoryAmend, OldExportOfAnAmendedScheduleReplaysFromItsBase) {
  Session x(Cosine());
  x.Steps(20);
  x.Amend(K::kScale, 20, {{"factor", 0.5}});
  x.Amend(K::kReparameterize, 40, {{"T_max", 50}});  // still pending at the import
  x.Steps(10);
  x.ExportImport(/*drop_record=*/true);
  EXPECT_EQ(x.s->first_recorded_epoch(), 30);
  x.Steps(20);
  x.Amend(K::kScale, 50, {{"factor", 3.0}});
  x.Steps(10);
  x.ExpectHistoryIsLive("from the base");
}

TEST(HistoryAmend, ChangeRunsKeepWhatAnAmendmentChangedAtOnce) {
  Session x(json{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 1.0}}}}}},
                 {"scheduler", {{"type", "ReduceLROnPlateau"}, {"factor", 0.5}, {"patience", 3}}}});
  const StepRequest m = test_support::Metric(1.0);
  x.Steps(10, m);
  x.Amend(K::kScale, x.s->last_epoch(), {{"factor", 0.1}});  // epoch 10 now given 0.1x
  x.Steps(10, m);
  x.Amend(K::kReparameterize, 25, {{"factor", 0.9}});
  x.Steps(10, m);
  EXPECT_TRUE(x.s->ExportState()["record"].contains("changes"));
  x.ExpectHistoryIsLive("plateau amended");
  x.ExportImport();
  x.Steps(5, m);
  x.ExpectHistoryIsLive("plateau amended, imported");
}

TEST(HistoryAmend, DerivedThenJumpsThroughAnAmendment) {
  Session x(json{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 1.0}}}}}},
                 {"scheduler", {{"type", "StepLR"}, {"step_size", 4}, {"gamma", 0.5}}}});
  x.Steps(12);
  x.Amend(K::kScale, 12, {{"factor", 0.25}});
  x.Amend(K::kScale, 30, {{"factor", 4.0}});
  x.Steps(3);
  for (double e : {20.0, 21.0, 35.0}) x.Steps(1, test_support::Epoch(e));  // past the pending scale
  x.Steps(3);
  x.ExpectHistoryIsLive("jumps");
}

TEST(HistoryAmend, MegatronAmendmentOffTheStride) {
  json spec = test_support::MegatronCosine(8, 200, 4);
  Session x(spec);
  x.Steps(2);                                                 // at 8
  x.Amend(K::kReparameterize, 10, {{"lr_decay_steps", 60}});  // applies at 12
  x.Amend(K::kScale, 30, {{"factor", 0.5}});                  // applies at 32
  x.Steps(15);
  EXPECT_FALSE(x.s->ExportState()["record"].contains("changes"));
  x.ExpectHistoryIsLive("megatron");
}

}  // namespace
}  // namespace lrsched
