// Copyright lrsched authors.
//
// Internal: the builder of megatron.OptimizerParamScheduler (schedulers_megatron.cc), called by
// BuildNode for that type.
#ifndef LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_MEGATRON_H_
#define LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_MEGATRON_H_

#include <memory>

#include "absl/status/statusor.h"
#include "scheduler/internal/fields.h"
#include "scheduler/internal/node.h"
#include "scheduler/optimizer.h"

namespace lrsched::scheduler_internal {

// Runs Megatron's constructor (its asserts, then step(0)) on `opt`. Refused inside a composite
// (depth > 0): torch's SequentialLR and ChainedScheduler cannot drive it.
absl::StatusOr<std::unique_ptr<SchedulerNode>> BuildMegatron(Fields& f, Optimizer& opt, int depth);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_SCHEDULERS_MEGATRON_H_
