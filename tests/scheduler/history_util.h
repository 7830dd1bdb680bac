// Copyright lrsched authors.
//
// What the record's tests compare: the values a live schedule gave at each epoch it stood at
// (read as a server reads them, not through the record) against Schedule::History, bit for bit.
#ifndef LRSCHED_TESTS_HISTORY_UTIL_H_
#define LRSCHED_TESTS_HISTORY_UTIL_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "scheduler/schedule.h"

namespace lrsched::test_support {

constexpr int64_t kAll = int64_t{1} << 62;

// What the live schedule serves now, read the way a server reads it (not through the record).
inline ServedEpoch Now(const Schedule& s) {
  ServedEpoch e;
  e.epoch = s.last_epoch();
  for (const ParamGroup& g : s.param_groups()) {
    e.lr.push_back(g.lr);
    if (s.has_momentum()) e.momentum.push_back(g.reported_momentum().value_or(0.0));
    if (s.drives_weight_decay()) e.weight_decay.push_back(g.weight_decay.value_or(0.0));
  }
  return e;
}

// Every epoch the schedule stood at, with the values it was given there last.
struct Live {
  std::map<int64_t, ServedEpoch> epochs;
  void Note(const Schedule& s) { epochs[s.last_epoch()] = Now(s); }
  // Steps and notes; returns the step's status.
  absl::Status Step(Schedule& s, const StepRequest& r) {
    absl::Status st = s.Step(r);
    if (st.ok()) Note(s);
    return st;
  }
};

inline bool SameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

inline std::string Show(const ServedEpoch& e) {
  return nlohmann::json{
      {"epoch", e.epoch}, {"lr", e.lr}, {"momentum", e.momentum}, {"weight_decay", e.weight_decay}}
      .dump();
}

// History over everything equals the live epochs from first_recorded_epoch() on.
inline void ExpectHistoryIsLive(const Schedule& s, const Live& live, const std::string& what) {
  auto h = s.History(-kAll, kAll, kAll, nullptr);
  ASSERT_TRUE(h.ok()) << what << ": " << h.status();
  auto it = live.epochs.lower_bound(s.first_recorded_epoch());
  size_t i = 0;
  for (; it != live.epochs.end() && i < h->size(); ++it, ++i) {
    const ServedEpoch& got = (*h)[i];
    ASSERT_EQ(got.epoch, it->first) << what << " entry " << i;
    ASSERT_TRUE(SameBits(got.lr, it->second.lr) && SameBits(got.momentum, it->second.momentum) &&
                SameBits(got.weight_decay, it->second.weight_decay))
        << what << ": history " << Show(got) << ", live " << Show(it->second);
  }
  EXPECT_EQ(it, live.epochs.end()) << what << ": history ends early, at entry " << i;
  EXPECT_EQ(i, h->size()) << what << ": history has epochs never reached";
}

// A Megatron cosine schedule (AdamW, one group, weight decay rising linearly) with warmup
// `warmup` and decay over `decay` num_steps, stepped by `increment` by default.
inline nlohmann::json MegatronCosine(int64_t warmup, int64_t decay, int64_t increment) {
  return {{"optimizer",
           {{"type", "AdamW"},
            {"param_groups", {{{"lr", 0.0}, {"betas", {0.9, 0.95}}, {"weight_decay", 0.1}}}}}},
          {"scheduler",
           {{"type", "megatron.OptimizerParamScheduler"},
            {"init_lr", 0.0},
            {"max_lr", 0.001},
            {"min_lr", 1e-05},
            {"lr_warmup_steps", warmup},
            {"lr_decay_steps", decay},
            {"lr_decay_style", "cosine"},
            {"start_wd", 0.01},
            {"end_wd", 0.1},
            {"wd_incr_steps", decay},
            {"wd_incr_style", "linear"},
            {"increment", increment}}}};
}

}  // namespace lrsched::test_support

#endif  // LRSCHED_TESTS_HISTORY_UTIL_H_
