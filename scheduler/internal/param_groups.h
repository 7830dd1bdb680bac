// Copyright lrsched authors.
//
// Param groups in and out of the shape torch's optimizer.state_dict()["param_groups"] uses, for
// Schedule's Restore and its exported state. Implemented in ../optimizer_spec.cc, next to
// ParseOptimizer, because both read a group with the same rules (the optimizer's class decides
// which of momentum and betas a group carries).
#ifndef LRSCHED_SCHEDULER_INTERNAL_PARAM_GROUPS_H_
#define LRSCHED_SCHEDULER_INTERNAL_PARAM_GROUPS_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "scheduler/optimizer.h"

namespace lrsched::scheduler_internal {

// torch's optimizer.load_state_dict() for the groups: replaces opt.groups with `groups`, one
// entry per existing group (a restored group may hold any finite value a schedule produced).
// Not all or nothing: on error the groups before the failing one are already replaced, so the
// caller discards `opt` (Schedule::Restore does).
absl::Status LoadParamGroups(const nlohmann::json& groups, Optimizer& opt);

// One group as torch's optimizer.state_dict() shows it, restricted to the keys schedulers use.
nlohmann::json ParamGroupJson(const ParamGroup& g);
// ParamGroupJson(g) as JSON text appended to `out` (the same keys: keep the two in step;
// tests/state_test.cc compares them on every golden case).
void AppendParamGroupText(const ParamGroup& g, std::string* out);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_PARAM_GROUPS_H_
