// Copyright lrsched authors.
//
// Registry::History: the record of a session (its spec, its amendments, the values each epoch
// reached was given), read from a copy of the schedule outside the session's lock, so a long
// replay never holds up the session's steps or readers.
#include <algorithm>
#include <utility>

#include "server/registry/registry.h"

namespace lrsched {

absl::StatusOr<HistoryPage> Registry::History(const std::string& name, const HistoryQuery& query,
                                              const std::function<bool()>& cancelled,
                                              const ReadOptions& options) {
  if (absl::Status ready = PrepareRead(name, options); !ready.ok()) return ready;
  HistoryPage page;
  std::unique_ptr<Schedule> copy;
  int64_t last = 0;
  {
    std::shared_ptr<Entry> e = Find(name);
    if (e == nullptr) return Missing(name);
    absl::MutexLock l(&e->mu);
    if (!e->live) return NotFound(name);
    copy = e->schedule->Clone();
    page.spec_json = e->schedule->spec_text();
    last = e->schedule->last_epoch();
  }
  page.amendments = copy->amendments();
  page.first_epoch = copy->first_recorded_epoch();
  const int64_t to = std::min(query.to.value_or(last), last);
  const int64_t from = std::max(query.from, page.first_epoch);
  if (from > to) return page;
  auto epochs = copy->History(from, to, query.limit, cancelled);
  if (!epochs.ok()) return epochs.status();
  page.epochs = *std::move(epochs);
  if (static_cast<int64_t>(page.epochs.size()) >= query.limit && !page.epochs.empty() &&
      page.epochs.back().epoch < to) {
    page.next_from = page.epochs.back().epoch + 1;
  }
  return page;
}

}  // namespace lrsched
