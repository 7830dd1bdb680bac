// Copyright lrsched authors.
//
// Schedule::History (issue #18, "The record"): what History answers equals, bit for bit, what
// the live schedule served at each epoch it stood at (recorded while stepping), for every golden
// case (plain steps: derived by replay; metrics and explicit epochs: change runs), step(epoch)
// jumps, Megatron increments, paging, the bound on change runs, export/import, restore, clone.
#include <cstring>
#include <map>

#include "gtest/gtest.h"
#include "scheduler/internal/served_record.h"
#include "scheduler/schedule.h"
#include "tests/scheduler/golden_util.h"
#include "tests/scheduler/history_util.h"
#include "tests/scheduler/step_requests.h"

namespace lrsched {
namespace {

using nlohmann::json;
using test_support::ExpectHistoryIsLive;
using test_support::GoldenCase;
using test_support::kAll;
using test_support::Live;
using test_support::SameBits;

std::unique_ptr<Schedule> Make(const json& spec) {
  auto s = Schedule::Create(spec);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

size_t StateBytes(const Schedule& s) {
  std::string text;
  s.AppendStateMembers(&text);
  return text.size();
}

json RecordOf(const Schedule& s) { return s.ExportState(false)["record"]; }

class HistoryGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

// Every golden case stepped as golden_test steps it: plain steps (derived record), metrics and
// explicit epochs (change runs); stopping at a refused step.
TEST_P(HistoryGoldenTest, ReplayEqualsLive) {
  const json& c = GetParam().j;
  auto created =
      Schedule::Create(json{{"optimizer", c["optimizer"]}, {"scheduler", c["scheduler"]}});
  if (!created.ok()) return;  // golden_test checks the refusal
  Schedule& s = **created;
  std::vector<double> metrics = test_support::Numbers(c, "metrics");
  std::vector<double> epochs = test_support::Numbers(c, "epochs");
  Live live;
  live.Note(s);
  const int64_t steps = c["steps"].get<int64_t>();
  for (int64_t i = 0; i < steps; ++i) {
    StepRequest r;
    if (!metrics.empty() && !std::isnan(metrics[i])) r.metric = metrics[i];
    if (!epochs.empty()) r.epoch = epochs[i];
    if (!live.Step(s, r).ok()) break;
    if (i == steps / 2) ExpectHistoryIsLive(s, live, "half-way");
  }
  const bool plain = metrics.empty() && epochs.empty();
  if (plain) {
    EXPECT_FALSE(RecordOf(s).contains("changes")) << RecordOf(s).dump();
    EXPECT_EQ(s.first_recorded_epoch(), live.epochs.begin()->first);
  }
  ExpectHistoryIsLive(s, live, GetParam().name());
  // A clone, and an import of the export, answer the same.
  ExpectHistoryIsLive(*s.Clone(), live, "clone");
  auto imported = Schedule::ImportState(json::parse(s.ExportState().dump()));
  ASSERT_TRUE(imported.ok()) << imported.status();
  ExpectHistoryIsLive(**imported, live, "imported");
}

INSTANTIATE_TEST_SUITE_P(All, HistoryGoldenTest, ::testing::ValuesIn(test_support::AllGolden()),
                         [](const auto& info) { return test_support::CaseTestName(info.param); });

json PlateauSpec(double factor, int patience) {
  return json{
      {"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 1.0}, {"momentum", 0.9}}}}}},
      {"scheduler", {{"type", "ReduceLROnPlateau"}, {"factor", factor}, {"patience", patience}}}};
}

json CosineSpec(int t_max = 100) {
  return json{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 0.1}}, {{"lr", 0.2}}}}}},
              {"scheduler", {{"type", "CosineAnnealingLR"}, {"T_max", t_max}}}};
}

TEST(History, PlateauKeepsOneRunPerReduction) {
  auto s = Make(PlateauSpec(0.5, 2));
  Live live;
  live.Note(*s);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(live.Step(*s, test_support::Metric(1.0)).ok());
  // The first metric step starts a run; reductions after every 3 epochs without improvement, at
  // epochs 4, 7, ..., 40, start one each.
  const json rec = RecordOf(*s);
  ASSERT_TRUE(rec.contains("changes")) << rec.dump();
  EXPECT_EQ(rec["changes"].size(), 1u + 13u) << rec.dump();
  EXPECT_EQ(rec["replay"]["to"], 0) << rec.dump();  // derived up to the first metric step
  ExpectHistoryIsLive(*s, live, "plateau");
  EXPECT_LT(StateBytes(*s), 2000u);
}

TEST(History, BoundDropsOldestRunsAndMovesFirstEpoch) {
  // factor 0.9, patience 0: a reduction on every step but the first, ~170 before eps stops them.
  auto s = Make(PlateauSpec(0.9, 0));
  Live live;
  live.Note(*s);
  size_t max_bytes = 0;
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(live.Step(*s, test_support::Metric(1.0)).ok());
    max_bytes = std::max(max_bytes, StateBytes(*s));
  }
  EXPECT_GT(s->first_recorded_epoch(), 50);
  EXPECT_EQ(RecordOf(*s)["changes"].size(), scheduler_internal::kMaxRecordedChanges);
  EXPECT_FALSE(RecordOf(*s).contains("replay"));
  // 64 runs of one group's lr and momentum: well under 8 KB, however long the run.
  EXPECT_LT(max_bytes, 8000u);
  ExpectHistoryIsLive(*s, live, "bounded");
  auto before = s->History(0, s->first_recorded_epoch() - 1, kAll, nullptr);
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->empty());
}

TEST(History, BoundCountsValuesOfWideSchedules) {
  json spec = PlateauSpec(0.9, 0);
  spec["optimizer"]["param_groups"] = json::array();
  for (int i = 0; i < 200; ++i)
    spec["optimizer"]["param_groups"].push_back({{"lr", 1.0}, {"momentum", 0.9}});
  auto s = Make(spec);
  Live live;
  live.Note(*s);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(live.Step(*s, test_support::Metric(1.0)).ok());
  // 400 numbers a run: 5 fit in kMaxRecordedValues.
  EXPECT_EQ(RecordOf(*s)["changes"].size(), scheduler_internal::kMaxRecordedValues / 400);
  ExpectHistoryIsLive(*s, live, "wide");
}

TEST(History, StepEpochJumpsReportOnlyEpochsReached) {
  auto s = Make(json{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 1.0}}}}}},
                     {"scheduler", {{"type", "StepLR"}, {"step_size", 3}, {"gamma", 0.5}}}});
  Live live;
  live.Note(*s);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(live.Step(*s, {}).ok());  // 1..4, derived
  for (double e : {5.0, 6.0, 20.0, 21.0, 3.0, 4.0, 40.0}) {
    ASSERT_TRUE(live.Step(*s, test_support::Epoch(e)).ok());
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(live.Step(*s, {}).ok());  // 41..45
  ExpectHistoryIsLive(*s, live, "jumps");
  auto h = s->History(7, 19, kAll, nullptr);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->empty()) << "epochs 7..19 were never reached";
}

TEST(History, MegatronIncrements) {
  json spec = test_support::MegatronCosine(10, 100, 2);
  auto s = Make(spec);
  Live live;
  live.Note(*s);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(live.Step(*s, test_support::Inc(2)).ok());  // the spec's
  EXPECT_FALSE(RecordOf(*s).contains("changes")) << "the spec's increment is a plain step";
  ExpectHistoryIsLive(*s, live, "spec increment");
  for (int64_t inc : {3, 1, 7, 2, 2, 2}) ASSERT_TRUE(live.Step(*s, test_support::Inc(inc)).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(live.Step(*s, {}).ok());
  EXPECT_TRUE(RecordOf(*s).contains("changes"));
  ExpectHistoryIsLive(*s, live, "increments");
  EXPECT_EQ(s->History(11, 12, kAll, nullptr)->size(), 0u) << "10 -> 13 skipped 11 and 12";
}

TEST(History, TimmStepsWithTheNextTStayDerived) {
  auto s = Make(json{{"optimizer", {{"type", "SGD"}, {"param_groups", {{{"lr", 0.1}}}}}},
                     {"scheduler",
                      {{"type", "timm.CosineLRScheduler"},
                       {"t_initial", 50},
                       {"warmup_t", 5},
                       {"warmup_lr_init", 1e-4}}}});
  Live live;
  live.Note(*s);
  // timm's train.py: lr_scheduler.step(epoch + 1, metric) after every epoch.
  for (int t = 1; t <= 30; ++t) {
    ASSERT_TRUE(live.Step(*s, test_support::MetricAtEpoch(0.5, static_cast<double>(t))).ok());
  }
  EXPECT_FALSE(RecordOf(*s).contains("changes")) << RecordOf(*s).dump();
  ExpectHistoryIsLive(*s, live, "timm t+1");
  ASSERT_TRUE(live.Step(*s, test_support::Epoch(40.0)).ok());  // a jump: kept as a change
  ASSERT_TRUE(live.Step(*s, test_support::Epoch(41.0)).ok());
  EXPECT_TRUE(RecordOf(*s).contains("changes"));
  ExpectHistoryIsLive(*s, live, "timm jump");
}

TEST(History, Paging) {
  auto s = Make(CosineSpec());
  Live live;
  live.Note(*s);
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(live.Step(*s, {}).ok());
  auto page = s->History(10, 20, 5, nullptr);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 5u);
  EXPECT_EQ(page->front().epoch, 10);
  EXPECT_EQ(page->back().epoch, 14);
  EXPECT_TRUE(SameBits((*page)[2].lr, live.epochs[12].lr));
  EXPECT_EQ(s->History(15, 20, 100, nullptr)->size(), 6u);
  EXPECT_EQ(s->History(140, 1000, 100, nullptr)->back().epoch, 150) << "clipped to last_epoch";
  EXPECT_EQ(s->History(-5, 2, 100, nullptr)->front().epoch, 0) << "clipped to the first epoch";
  EXPECT_TRUE(s->History(20, 10, 100, nullptr)->empty());
  EXPECT_TRUE(s->History(0, 10, 0, nullptr)->empty());
  EXPECT_FALSE(s->History(0, 10, -1, nullptr).ok());
  // Pages joined are the whole record.
  std::vector<ServedEpoch> all;
  for (int64_t from = 0;;) {
    auto p = s->History(from, kAll, 7, nullptr);
    ASSERT_TRUE(p.ok());
    if (p->empty()) break;
    all.insert(all.end(), p->begin(), p->end());
    from = p->back().epoch + 1;
  }
  ASSERT_EQ(all.size(), 151u);
  for (const ServedEpoch& e : all) EXPECT_TRUE(SameBits(e.lr, live.epochs[e.epoch].lr));
}

TEST(History, CreatedWithLastEpochStartsThere) {
  json spec = CosineSpec();
  spec["scheduler"]["last_epoch"] = 9;
  for (auto& g : spec["optimizer"]["param_groups"]) g["initial_lr"] = g["lr"];
  auto s = Make(spec);
  EXPECT_EQ(s->first_recorded_epoch(), 10);
  Live live;
  live.Note(*s);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(live.Step(*s, {}).ok());
  ExpectHistoryIsLive(*s, live, "last_epoch 9");
}

TEST(History, RestoredStartsAtTheCheckpoint) {
  auto a = Make(CosineSpec());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(a->Step({}).ok());
  auto s = Schedule::Restore(a->spec(), a->ParamGroupsJson(), a->StateDict());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->first_recorded_epoch(), 30);
  Live live;
  live.Note(**s);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(live.Step(**s, {}).ok());
  ExpectHistoryIsLive(**s, live, "restored");  // replayed from the checkpoint's state
  EXPECT_FALSE(RecordOf(**s).contains("changes"));
}

TEST(History, ExportImportMidRunKeepsTheRecord) {
  for (bool metrics : {false, true}) {
    auto s = metrics ? Make(PlateauSpec(0.5, 1)) : Make(CosineSpec());
    Live live;
    live.Note(*s);
    StepRequest r;
    if (metrics) r.metric = 1.0;
    for (int i = 0; i < 25; ++i) ASSERT_TRUE(live.Step(*s, r).ok());
    // As a server stores it: the members' text with the spec spliced in.
    std::string text = "{";
    s->AppendStateMembers(&text);
    text += ",\"spec\":" + s->spec_text() + "}";
    auto imported = Schedule::ImportState(json::parse(text));
    ASSERT_TRUE(imported.ok()) << imported.status();
    EXPECT_EQ((*imported)->first_recorded_epoch(), 0);
    for (int i = 0; i < 25; ++i) ASSERT_TRUE(live.Step(**imported, r).ok());
    ExpectHistoryIsLive(**imported, live, metrics ? "plateau imported" : "cosine imported");
  }
}

TEST(History, OldExportWithoutRecordStartsAtImport) {
  auto s = Make(CosineSpec());
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(s->Step({}).ok());
  json state = s->ExportState();
  state.erase("record");
  auto imported = Schedule::ImportState(state);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ((*imported)->first_recorded_epoch(), 25);
  Live live;
  live.Note(**imported);
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(live.Step(**imported, {}).ok());
  ExpectHistoryIsLive(**imported, live, "old export");
  // ... and an export of that import keeps its base.
  auto again = Schedule::ImportState(json::parse((*imported)->ExportState().dump()));
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectHistoryIsLive(**again, live, "old export re-exported");
}

TEST(History, BadRecordsAreRefusedNamingTheField) {
  auto s = Make(PlateauSpec(0.5, 1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s->Step(test_support::Metric(1.0)).ok());
  json good = s->ExportState();
  auto refused = [&](const std::function<void(json&)>& edit, const std::string& field) {
    json bad = good;
    edit(bad);
    auto r = Schedule::ImportState(bad);
    ASSERT_FALSE(r.ok()) << bad["record"].dump();
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status();
  };
  refused([](json& j) { j["record"]["changes"][0]["values"] = {1.0}; },
          "state.record.changes[0].values");
  refused(
      [](json& j) {
        j["record"]["changes"][0]["epochs"] = {5, 2, 1};
      },
      "state.record.changes[0].epochs");
  refused([](json& j) { j["record"].erase("first_epoch"); }, "state.record.first_epoch");
  refused([](json& j) { j["record"]["replay"]["base"] = 3; }, "state.record.replay.base");
  refused([](json& j) { j["record"]["replay"]["amendments"] = 2; },
          "state.record.replay.amendments");
  refused([](json& j) { j["record"] = json::object({{"first_epoch", 0}}); }, "state.record");
}

TEST(History, LongReplayPollsCancelled) {
  auto s = Make(CosineSpec(1000));
  const size_t bytes_at_start = RecordOf(*s).dump().size();
  for (int i = 0; i < 200000; ++i) ASSERT_TRUE(s->Step({}).ok());
  // Derived: the record does not grow with the steps.
  EXPECT_EQ(RecordOf(*s).dump().size(), bytes_at_start) << RecordOf(*s).dump();
  EXPECT_LT(bytes_at_start, 64u);
  int polls = 0;
  auto h = s->History(190000, 190010, kAll, [&] { return ++polls >= 3; });
  EXPECT_TRUE(absl::IsCancelled(h.status())) << h.status();
  EXPECT_EQ(polls, 3);
  EXPECT_EQ(s->History(190000, 190010, kAll, [] { return false; })->size(), 11u);
}

}  // namespace
}  // namespace lrsched
