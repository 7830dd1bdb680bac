// Copyright lrsched authors.
//
// Registry::Load: the start-up read of every stored session. Decoding a record (a JSON parse
// and a schedule rebuilt from its spec and state) is nearly all of the start-up time, and each
// record decodes independently. So the store's rows are read in batches by this thread while
// one decoder thread per core decodes the batches already read (at most kMaxPendingBatches
// raw batches wait, which bounds the transient memory of undecoded records); entries are then
// created in the store's order, and the first bad record (in that order) fails the load, as a
// sequential load would (or, with DamagedRecords::kQuarantine, each bad one is set aside).
#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/registry/record_frame.h"
#include "server/registry/registry.h"

namespace lrsched {
namespace {

constexpr size_t kBatchRows = 1024;
constexpr size_t kMaxPendingBatches = 8;  // ~1 KB per raw record: about 8 MB in flight

struct Row {
  std::string name;
  std::string value;
  int64_t revision = 0;
  absl::StatusOr<DecodedRecord> decoded = absl::UnknownError("not decoded");
};
using Batch = std::vector<Row>;

void Decode(Row& row) {
  // Every store numbers a record's versions from 1; anything else (a SQLite revision column
  // edited to text or 0) would make the next mutation's compare fail for ever.
  row.decoded = row.revision >= 1
                    ? DecodeRecordOf(row.name, row.value)
                    : absl::DataLossError(absl::StrCat("record: store revision ", row.revision,
                                                       " is not positive"));
  std::string().swap(row.value);  // the raw record is not needed any more
}

// Batches read and waiting for a decoder; decoders take them in any order (each batch keeps
// its place in `all`, which is the store's order).
class DecodeQueue {
 public:
  explicit DecodeQueue(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) decoders_.emplace_back([this] { Work(); });
  }
  ~DecodeQueue() { Finish(); }

  // Blocks while kMaxPendingBatches are waiting.
  void Push(Batch* batch) {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(this, &DecodeQueue::HasRoom));
    pending_.push_back(batch);
  }
  // Decodes what is left, then joins the decoders. Idempotent.
  void Finish() {
    {
      absl::MutexLock l(&mu_);
      closed_ = true;
    }
    for (std::thread& t : decoders_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_.size() < kMaxPendingBatches;
  }
  bool HasWorkOrClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !pending_.empty() || closed_;
  }
  void Work() {
    for (;;) {
      Batch* batch;
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(this, &DecodeQueue::HasWorkOrClosed));
        if (pending_.empty()) return;
        batch = pending_.front();
        pending_.pop_front();
      }
      for (Row& row : *batch) Decode(row);
    }
  }

  absl::Mutex mu_;
  std::deque<Batch*> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> decoders_;
};

}  // namespace

absl::Status Registry::Load(const LoadOptions& options) {
  std::vector<std::unique_ptr<Batch>> all;
  absl::Status read;
  {
    DecodeQueue queue(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
    auto batch = std::make_unique<Batch>();
    batch->reserve(kBatchRows);
    read = store_->LoadAll(
        [&](std::string_view name, std::string_view value, int64_t revision) -> absl::Status {
          Row& row = batch->emplace_back();
          row.name = std::string(name);
          row.value = std::string(value);
          row.revision = revision;
          if (batch->size() == kBatchRows) {
            queue.Push(batch.get());
            all.push_back(std::move(batch));
            batch = std::make_unique<Batch>();
            batch->reserve(kBatchRows);
          }
          return absl::OkStatus();
        });
    if (!batch->empty()) {
      queue.Push(batch.get());
      all.push_back(std::move(batch));
    }
  }  // every batch pushed is decoded once the queue is finished
  if (!read.ok()) return read;
  std::vector<std::shared_ptr<Entry>> old_format;
  for (const auto& b : all) {
    for (Row& row : *b) {
      if (!row.decoded.ok()) {
        if (options.damaged == DamagedRecords::kQuarantine) {
          Quarantine(row.name, row.revision, row.decoded.status());
          continue;
        }
        return absl::DataLossError(absl::StrCat("session \"", row.name, "\" (store revision ",
                                                row.revision,
                                                "): ", row.decoded.status().message()));
      }
      auto e = std::make_shared<Entry>();
      if (row.decoded->format < kRecordFormat) old_format.push_back(e);
      {
        absl::MutexLock l(&e->mu);
        e->live = true;
        e->schedule = std::move(row.decoded->schedule);
        e->meta = std::move(row.decoded->meta);
        e->store_revision = row.revision;
      }
      // Not under e->mu: the map's mutex comes after an entry's in the lock order.
      absl::MutexLock m(&map_mu_);
      // Stores list in name order, so the end is the right place (the hint makes it O(1)).
      sessions_.insert_or_assign(sessions_.end(), std::move(row.name), std::move(e));
    }
  }
  all.clear();
  if (!old_format.empty()) MigrateRecords(old_format);
  return absl::OkStatus();
}

}  // namespace lrsched
