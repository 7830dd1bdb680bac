// Copyright lrsched authors.
//
// A session's data as the registry keeps it, apart from locking: its identity and bookkeeping
// (SessionMeta), the read-only view handed to RPC replies and watchers (SessionSnapshot), and
// the durable record stored under the session's name:
//   Schedule::ExportState() + {"name", "labels", "revision", "schedule_revision", "create_time",
//   "update_time"}
// as JSON text (times RFC 3339 in UTC, to the nanosecond), framed with its format and CRC32C
// (record_frame.h). DecodeRecord(EncodeRecord(x)) rebuilds the schedule with
// Schedule::ImportState, so a restarted server continues bit-exactly; a damaged record is
// DATA_LOSS, never a different state.
#ifndef LRSCHED_SERVER_SESSION_H_
#define LRSCHED_SERVER_SESSION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "scheduler/amendment.h"
#include "scheduler/schedule.h"

namespace lrsched {

// A session's labels: key -> value, ordered by key (the rpc layer validates them on the way in,
// server/rpc/validate.h).
using Labels = std::map<std::string, std::string>;

// Records are written by us, but a session imported from a large checkpoint must still fit in
// one record that the next start-up can read back; mutations producing a larger one are refused.
inline constexpr size_t kMaxRecordBytes = 4 << 20;

struct SessionMeta {
  std::string name;
  Labels labels;
  int64_t revision = 0;  // 1 at creation, +1 per mutation
  absl::Time create_time;
  absl::Time update_time;
  // The revision of the schedule's definition: `revision` as it was at the session's creation,
  // its last import or its last amendment (steps leave it). A record written before it existed
  // reads as 1, its create revision.
  int64_t schedule_revision = 1;
};

// One param group's values now (lr, and momentum or betas[0] where the optimizer has one, and
// weight_decay where the schedule drives it).
struct GroupValue {
  double lr = 0;
  std::optional<double> momentum;
  std::optional<double> weight_decay;
};

struct SessionSnapshot {
  SessionMeta meta;
  std::string spec_json;  // canonical: keys sorted
  int64_t last_epoch = 0;
  std::vector<GroupValue> groups;
  std::string scheduler_type;
  bool deterministic = true;
  // Watch only: set on the snapshot that follows an amendment (the amendment as recorded).
  std::optional<Amendment> amendment;
};

std::vector<GroupValue> GroupValues(const Schedule& s);
SessionSnapshot MakeSnapshot(const SessionMeta& meta, const std::string& spec_json,
                             const Schedule& s);

// The durable record; fails (RESOURCE_EXHAUSTED) when it would exceed kMaxRecordBytes.
// Written as text directly (no JSON tree): it is on every step's path.
absl::StatusOr<std::string> EncodeRecord(const SessionMeta& meta, const Schedule& s);
// A record's time as a quoted JSON string, as absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", UTC)
// writes it (exposed for its test).
void AppendRecordTime(absl::Time t, std::string* out);

struct DecodedRecord {
  SessionMeta meta;
  std::unique_ptr<Schedule> schedule;
  int format = 2;  // 1: written before records were checksummed (rewrite it)
};
// Every failure is DATA_LOSS saying what is wrong with the record (not naming the session).
absl::StatusOr<DecodedRecord> DecodeRecord(std::string_view record);
// DecodeRecord of the record stored under `name`, which must be the name it holds.
absl::StatusOr<DecodedRecord> DecodeRecordOf(std::string_view name, std::string_view record);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_SESSION_H_
