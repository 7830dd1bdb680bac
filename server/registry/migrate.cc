// Copyright lrsched authors.
//
// Registry::MigrateRecords: the start-up rewrite of records read in an older format
// (record_frame.h; format 1 had no checksum), so that every record is checked from then on.
// Runs at the end of Load, before the server serves anything. The rewrite is an ordinary put
// compared on the revision just read: the session's state and its own revision do not change,
// only the bytes that hold them. A record that cannot be rewritten now (a full disk, a lost
// compare on a shared store) stays readable as it is and is tried again at the next start.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"
#include "server/registry/record_frame.h"
#include "server/registry/registry.h"

namespace lrsched {
namespace {

// Commits in flight at once: enough for SQLite's group commit to fill its batches and for
// etcd's pipelining, few enough that the records waiting take little memory.
constexpr int64_t kInFlight = 512;

}  // namespace

void Registry::MigrateRecords(const std::vector<std::shared_ptr<Entry>>& entries) {
  const absl::Time t0 = absl::Now();
  absl::Mutex mu;
  int64_t in_flight = 0, done = 0, failed = 0;
  absl::Status first_error;
  for (const std::shared_ptr<Entry>& e : entries) {
    absl::StatusOr<std::string> record;
    Mutation m;
    {
      absl::MutexLock l(&e->mu);
      record = EncodeRecord(e->meta, *e->schedule);
      m.name = e->meta.name;
      m.expected_revision = e->store_revision;
    }
    if (!record.ok()) {  // cannot be: it was read back from a record of its own
      absl::MutexLock l(&mu);
      ++failed;
      if (first_error.ok()) first_error = record.status();
      continue;
    }
    m.value = *std::move(record);
    {
      absl::MutexLock l(&mu);
      mu.Await(absl::Condition(
          +[](int64_t* n) { return *n < kInFlight; }, &in_flight));
      ++in_flight;
    }
    // Nothing else touches the entries yet (the server is not serving), so the callback may
    // install the new store revision itself.
    store_->CommitAsync(std::move(m), [e, &mu, &in_flight, &done, &failed,
                                       &first_error](absl::StatusOr<int64_t> rev) {
      if (rev.ok()) {
        absl::MutexLock l(&e->mu);
        e->store_revision = *rev;
      }
      absl::MutexLock l(&mu);
      --in_flight;
      if (rev.ok()) {
        ++done;
      } else {
        ++failed;
        if (first_error.ok()) first_error = rev.status();
      }
    });
  }
  absl::MutexLock l(&mu);
  mu.Await(absl::Condition(
      +[](int64_t* n) { return *n == 0; }, &in_flight));
  logging::Info("records_migrated")
      .Kv("count", done)
      .Kv("from_format", int64_t{1})
      .Kv("to_format", int64_t{kRecordFormat})
      .Kv("ms", absl::ToInt64Milliseconds(absl::Now() - t0));
  if (failed > 0) {
    logging::Warning("records_not_migrated")
        .Kv("count", failed)
        .Kv("msg", "they stay in their old format, readable, until the next start")
        .Err(first_error);
  }
}

}  // namespace lrsched
