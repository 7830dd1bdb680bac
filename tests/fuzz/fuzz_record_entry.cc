// Copyright lrsched authors.
//
// FuzzRecord (fuzz_entry.h): the bytes of one stored record, as a store hands them to the
// registry after a disk or an etcd key was damaged or written by someone else. Decoding must
// refuse or accept them without crashing, what it accepts must encode back to a record that
// decodes to the same bytes again, and a registry loading them beside two good records must
// start (setting them aside if need be) and keep serving the good ones.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/ops/log.h"
#include "server/registry/record_frame.h"
#include "server/registry/registry.h"
#include "server/registry/session.h"
#include "server/store/testing/memory_store.h"
#include "tests/fuzz/fuzz_entry.h"

namespace lrsched::fuzz {
namespace {

// A good record of session `name` (a few steps into a cosine schedule).
std::string GoodRecord(const std::string& name) {
  auto s = Schedule::Create(nlohmann::json::parse(
      R"({"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
          "scheduler": {"type": "CosineAnnealingLR", "T_max": 10}})"));
  FUZZ_CHECK(s.ok());
  FUZZ_CHECK((*s)->Step({}).ok());
  SessionMeta meta;
  meta.name = name;
  meta.revision = 2;
  meta.create_time = meta.update_time = absl::FromUnixSeconds(1764500000);
  absl::StatusOr<std::string> r = EncodeRecord(meta, **s);
  FUZZ_CHECK(r.ok());
  return *r;
}

}  // namespace

void FuzzRecord(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    logging::SetMinLevel(logging::Level::kError);  // a record_damaged line per input is enough
    return true;
  }();
  (void)quiet;
  if (size == 0) return;
  // The first byte picks how the rest is stored: odd, framed with a correct checksum (so the
  // fuzzer reaches the JSON and the state behind it); even, as it is (the frame itself).
  std::string record;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    BeginRecord(&record);
    record.append(rest);
    SealRecord(&record);
  } else {
    record = std::string(rest);
  }

  absl::StatusOr<DecodedRecord> decoded = DecodeRecordOf("b", record);
  if (decoded.ok()) {
    absl::StatusOr<std::string> again = EncodeRecord(decoded->meta, *decoded->schedule);
    FUZZ_CHECK(again.ok());
    absl::StatusOr<DecodedRecord> twice = DecodeRecord(*again);
    FUZZ_CHECK(twice.ok());
    FUZZ_CHECK(twice->format == kRecordFormat);
    absl::StatusOr<std::string> thrice = EncodeRecord(twice->meta, *twice->schedule);
    FUZZ_CHECK(thrice.ok() && *thrice == *again);
  } else {
    FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kDataLoss);
  }

  // The load path, both ways.
  static const std::string* const good_a = new std::string(GoodRecord("a"));
  static const std::string* const good_c = new std::string(GoodRecord("c"));
  MemoryStore store;
  store.Put("a", *good_a);
  store.Put("b", record);
  store.Put("c", *good_c);
  {
    Registry refusing(&store, 10);
    absl::Status s = refusing.Load();
    FUZZ_CHECK(s.ok() == decoded.ok());
    if (!s.ok()) FUZZ_CHECK(s.code() == absl::StatusCode::kDataLoss);
  }
  Registry r(&store, 10);
  FUZZ_CHECK(r.Load(LoadOptions{DamagedRecords::kQuarantine}).ok());
  FUZZ_CHECK(r.size() + r.damaged_count() == 3);
  FUZZ_CHECK(r.Get("a").ok() && r.Get("c").ok());
  absl::StatusCode b = r.Get("b").status().code();
  FUZZ_CHECK(decoded.ok() ? b == absl::StatusCode::kOk : b == absl::StatusCode::kDataLoss);
  if (decoded.ok()) {
    // A record that loads serves, steps (or refuses the step) and is stored again.
    absl::StatusCode step = r.Step("b", {}, std::nullopt).status().code();
    FUZZ_CHECK(step == absl::StatusCode::kOk || step == absl::StatusCode::kFailedPrecondition);
  } else {
    FUZZ_CHECK(r.Delete("b", std::nullopt).ok());
    FUZZ_CHECK(r.Get("b").status().code() == absl::StatusCode::kNotFound);
  }
}

}  // namespace lrsched::fuzz
