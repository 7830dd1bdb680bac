// Copyright lrsched authors.
//
// The registry's reads that go beyond one snapshot: paged listing, lookahead on a copy, and
// export. None of them changes a session.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/registry/registry.h"

namespace lrsched {
namespace {

// A lookahead window carries window x groups values; bounded so a reply stays small.
constexpr int64_t kMaxWindowValues = 1'000'000;

bool LabelsMatch(const Labels& have, const Labels& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ListPage> Registry::List(const ListQuery& query, const ReadOptions& options) {
  if (store_->shared()) {
    if (options.consistent) return ListFromStore(query);
    if (FeedActive()) {
      if (absl::Status fresh = CheckFeedFresh(); !fresh.ok()) return fresh;
    }
  }
  ListPage page;
  const size_t want = static_cast<size_t>(std::max<int32_t>(query.page_size, 1));
  std::string cursor = query.after;
  // Candidates are taken from the map in batches (names only, under the map's lock), then
  // checked one by one under their own locks: the lock order forbids holding both.
  for (;;) {
    std::vector<std::pair<std::string, std::shared_ptr<Entry>>> batch;
    bool more = false;
    {
      absl::MutexLock m(&map_mu_);
      auto it = sessions_.lower_bound(query.name_prefix);
      if (!cursor.empty() && cursor >= query.name_prefix) it = sessions_.upper_bound(cursor);
      for (; it != sessions_.end() && absl::StartsWith(it->first, query.name_prefix); ++it) {
        if (batch.size() == want) {
          more = true;
          break;
        }
        batch.emplace_back(it->first, it->second);
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& [name, e] = batch[i];
      cursor = name;
      absl::MutexLock l(&e->mu);
      if (!e->live || !LabelsMatch(e->meta.labels, query.labels)) continue;
      page.sessions.push_back(SnapshotLocked(*e));
      if (page.sessions.size() == want) {
        if (more || i + 1 < batch.size()) page.last_name = name;
        return page;
      }
    }
    if (!more) return page;
  }
}

absl::StatusOr<ListPage> Registry::ListFromStore(const ListQuery& query) {
  // Straight from the store, memory untouched: LoadAll is one snapshot in name order, and the
  // callback stops it (with `full`) once the page is full and one more match shows.
  ListPage page;
  const size_t want = static_cast<size_t>(std::max<int32_t>(query.page_size, 1));
  const absl::Status full = absl::CancelledError("page full");
  absl::ReaderMutexLock load(&load_mu_);
  absl::Status s = store_->LoadAll([&](std::string_view name, std::string_view value,
                                       int64_t revision) -> absl::Status {
    if (name.substr(0, query.name_prefix.size()) != query.name_prefix) return absl::OkStatus();
    if (!query.after.empty() && name <= query.after) return absl::OkStatus();
    auto rec = DecodeRecordOf(name, value);
    if (!rec.ok()) {
      // Listed by no one: its name answers DATA_LOSS (Quarantine takes no lock we hold).
      Quarantine(std::string(name), revision, rec.status());
      return absl::OkStatus();
    }
    if (!LabelsMatch(rec->meta.labels, query.labels)) return absl::OkStatus();
    if (page.sessions.size() == want) {
      page.last_name = page.sessions.back().meta.name;
      return full;
    }
    page.sessions.push_back(MakeSnapshot(rec->meta, rec->schedule->spec_text(), *rec->schedule));
    return absl::OkStatus();
  });
  if (!page.last_name.empty()) return page;  // stopped by `full`
  if (!s.ok()) return StoreFailure(s);
  return page;
}

absl::StatusOr<Lookahead> Registry::LookAhead(const std::string& name, int64_t ahead,
                                              int32_t window,
                                              const std::function<bool()>& cancelled,
                                              const ReadOptions& options,
                                              const LookaheadLimits& limits) {
  if (absl::Status ready = PrepareRead(name, options); !ready.ok()) return ready;
  Lookahead out;
  std::unique_ptr<Schedule> copy;
  const int64_t steps = std::max<int64_t>(ahead, static_cast<int64_t>(window) - 1);
  {
    std::shared_ptr<Entry> e = Find(name);
    if (e == nullptr) return Missing(name);
    absl::MutexLock l(&e->mu);
    if (!e->live) return NotFound(name);
    out.last_epoch = e->schedule->last_epoch();
    out.revision = e->meta.revision;
    out.schedule_revision = e->meta.schedule_revision;
    out.groups = GroupValues(*e->schedule);
    out.epoch = out.last_epoch;
    if (ahead == 0 && window <= 1) {
      if (window == 1) out.window.push_back({out.last_epoch, out.groups});
      return out;
    }
    const int64_t groups = static_cast<int64_t>(e->schedule->param_groups().size());
    const int64_t values = static_cast<int64_t>(window) * groups;
    if (values > kMaxWindowValues) {
      return absl::InvalidArgumentError(absl::StrCat("window: ", window, " epochs x ", groups,
                                                     " param groups is more than ",
                                                     kMaxWindowValues, " values"));
    }
    if (values > limits.max_reply_bytes / kLookaheadValueBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("window: ", window, " epochs x ", groups, " param groups x ",
                       kLookaheadValueBytes, " bytes is more than this server's reply limit of ",
                       limits.max_reply_bytes, " bytes (--max_reply_bytes)"));
    }
    // Bounded by what the work costs, not by the step count alone: a step of a chain of
    // long lambdas costs a thousand times one of CosineAnnealingLR.
    const int64_t per_step = e->schedule->step_cost();
    if (steps > limits.max_cost / per_step) {
      return absl::ResourceExhaustedError(absl::StrCat(
          ahead >= steps ? "ahead" : "window", ": ", steps, " steps x ", per_step,
          " cost units per step of this session's schedule is more than this server's limit of ",
          limits.max_cost, " per call (--max_call_cost)"));
    }
    if (!e->schedule->deterministic()) {
      return absl::FailedPreconditionError(absl::StrCat(
          e->schedule->scheduler_type(),
          " depends on the metric passed to each step: no lookahead (ahead and window must be "
          "at most 0 and 1)"));
    }
    // Stepping happens outside the lock, on a copy: a long lookahead does not stall steps.
    copy = e->schedule->Clone();
  }
  if (window > 0) {
    out.window.reserve(static_cast<size_t>(window));
    out.window.push_back({out.last_epoch, out.groups});
  }
  // Polls for cancellation (deadline, client gone) every few ms of work, whatever a step costs.
  const int64_t check_every = std::max<int64_t>(1, kCancelCheckCost / copy->step_cost());
  for (int64_t i = 1; i <= steps; ++i) {
    if (i % check_every == 0 && cancelled && cancelled()) {
      return absl::CancelledError("lookahead: the call was cancelled");
    }
    absl::Status s = copy->Step({});
    if (!s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("lookahead: step ", i, " after last_epoch ",
                                                        out.last_epoch,
                                                        " is refused: ", std::string(s.message())));
    }
    if (i < window) out.window.push_back({copy->last_epoch(), GroupValues(*copy)});
    if (i == ahead) {
      out.groups = GroupValues(*copy);
      out.epoch = copy->last_epoch();
    }
  }
  return out;
}

absl::StatusOr<int64_t> Registry::StepCost(const std::string& name) {
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return NotFound(name);
  absl::MutexLock l(&e->mu);
  if (!e->live) return NotFound(name);
  return e->schedule->step_cost();
}

absl::StatusOr<ExportedState> Registry::Export(const std::string& name) {
  if (absl::Status synced = Sync(name); !synced.ok()) return synced;  // shared store only
  std::shared_ptr<Entry> e = Find(name);
  if (e == nullptr) return Missing(name);
  absl::MutexLock l(&e->mu);
  if (!e->live) return NotFound(name);
  ExportedState out;
  nlohmann::json state = e->schedule->ExportState();
  state["name"] = e->meta.name;
  state["labels"] = nlohmann::json(e->meta.labels);
  out.state_json = state.dump();
  out.torch_state_dict_json = e->schedule->StateDict().dump();
  out.torch_param_groups_json = e->schedule->ParamGroupsJson().dump();
  out.session = SnapshotLocked(*e);
  return out;
}

}  // namespace lrsched
