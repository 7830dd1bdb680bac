// Copyright lrsched authors.
//
// Registry::Load: the start-up read of every stored session. Decoding a record (a JSON parse
// and a schedule rebuilt from its spec and state) is nearly all of the start-up time, and each
// record decodes independently, so records are read in batches and each batch is decoded on
// every core; entries are then created in the store's order, and the first bad record (in that
// order) fails the load, as a sequential load would.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/registry.h"

namespace lrsched {
namespace {

// Rows per batch: enough to keep every core busy, few enough that the raw records of one batch
// (about 1 KB each) stay a small transient next to the sessions themselves.
constexpr size_t kBatchRows = 2048;

struct Row {
  std::string name;
  std::string value;
  int64_t revision = 0;
  absl::StatusOr<DecodedRecord> decoded = absl::UnknownError("not decoded");
};

void Decode(Row& row) {
  row.decoded = DecodeRecord(row.value);
  if (!row.decoded.ok()) {
    row.decoded = absl::Status(row.decoded.status().code(),
                               absl::StrCat("session \"", row.name, "\": ",
                                            std::string(row.decoded.status().message())));
    return;
  }
  if (row.decoded->meta.name != row.name) {
    row.decoded = absl::DataLossError(absl::StrCat("session \"", row.name,
                                                   "\": record names \"",
                                                   row.decoded->meta.name, "\""));
    return;
  }
  std::string().swap(row.value);  // the raw record is not needed any more
}

// Decodes rows[i] for every i, spread over `threads` threads (this one included).
void DecodeAll(std::vector<Row>& rows, unsigned threads) {
  const size_t n = rows.size();
  const unsigned t = static_cast<unsigned>(std::min<size_t>(threads, (n + 63) / 64));
  if (t <= 1) {
    for (Row& r : rows) Decode(r);
    return;
  }
  std::vector<std::thread> helpers;
  helpers.reserve(t - 1);
  for (unsigned k = 1; k < t; ++k) {
    helpers.emplace_back([&rows, n, t, k] {
      for (size_t i = k; i < n; i += t) Decode(rows[i]);
    });
  }
  for (size_t i = 0; i < n; i += t) Decode(rows[i]);
  for (std::thread& h : helpers) h.join();
}

}  // namespace

absl::Status Registry::Load() {
  const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  std::vector<Row> batch;
  batch.reserve(kBatchRows);
  auto flush = [&]() -> absl::Status {
    DecodeAll(batch, threads);
    for (Row& row : batch) {
      if (!row.decoded.ok()) return row.decoded.status();
      auto e = std::make_shared<Entry>();
      {
        absl::MutexLock l(&e->mu);
        e->live = true;
        e->schedule = std::move(row.decoded->schedule);
        e->meta = std::move(row.decoded->meta);
        e->store_revision = row.revision;
      }
      absl::MutexLock m(&map_mu_);
      // Stores list in name order, so the end is the right place (the hint makes it O(1)).
      sessions_.insert_or_assign(sessions_.end(), std::move(row.name), std::move(e));
    }
    batch.clear();
    return absl::OkStatus();
  };
  absl::Status s = store_->LoadAll(
      [&](std::string_view name, std::string_view value, int64_t revision) -> absl::Status {
        Row& row = batch.emplace_back();
        row.name = std::string(name);
        row.value = std::string(value);
        row.revision = revision;
        return batch.size() == kBatchRows ? flush() : absl::OkStatus();
      });
  if (s.ok() && !batch.empty()) s = flush();
  return s;
}

}  // namespace lrsched
