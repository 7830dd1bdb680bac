// Copyright lrsched authors.
#include "server/session.h"

#include "absl/strings/str_cat.h"

namespace lrsched {
namespace {

using json = nlohmann::json;

constexpr const char* kTimeFormat = "%Y-%m-%dT%H:%M:%E*SZ";

std::string TimeText(absl::Time t) {
  return absl::FormatTime(kTimeFormat, t, absl::UTCTimeZone());
}

absl::Status TimeFromJson(const json& j, const char* key, absl::Time* out) {
  std::string err;
  if (!j.is_string() ||
      !absl::ParseTime(kTimeFormat, j.get<std::string>(), absl::UTCTimeZone(), out, &err)) {
    return absl::DataLossError(absl::StrCat("record: ", key, ": not an RFC 3339 time ", err));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<GroupValue> GroupValues(const Schedule& s) {
  std::vector<GroupValue> out;
  out.reserve(s.param_groups().size());
  const bool has_momentum = s.has_momentum();
  for (const ParamGroup& g : s.param_groups()) {
    GroupValue v;
    v.lr = g.lr;
    // The same value (and the same rule) as a trace's "momentum" column.
    if (has_momentum) v.momentum = g.reported_momentum().value_or(0.0);
    out.push_back(v);
  }
  return out;
}

SessionSnapshot MakeSnapshot(const SessionMeta& meta, const std::string& spec_json,
                             const Schedule& s) {
  SessionSnapshot snap;
  snap.meta = meta;
  snap.spec_json = spec_json;
  snap.last_epoch = s.last_epoch();
  snap.groups = GroupValues(s);
  snap.scheduler_type = s.scheduler_type();
  snap.deterministic = s.deterministic();
  return snap;
}

absl::StatusOr<std::string> EncodeRecord(const SessionMeta& meta, const Schedule& s) {
  // Written on every step: the spec, which never changes, is spliced in as the text the
  // schedule keeps rather than re-serialized from a tree.
  json j = s.ExportState(/*include_spec=*/false);
  j["name"] = meta.name;
  j["labels"] = json(meta.labels);
  j["revision"] = meta.revision;
  j["create_time"] = TimeText(meta.create_time);
  j["update_time"] = TimeText(meta.update_time);
  std::string rest = j.dump();  // "{...}", never empty
  std::string text;
  text.reserve(rest.size() + s.spec_text().size() + 9);
  text.append("{\"spec\":").append(s.spec_text()).append(",").append(rest, 1);
  if (text.size() > kMaxRecordBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("session state: ", text.size(), " bytes, more than the limit of ",
                     kMaxRecordBytes));
  }
  return text;
}

absl::StatusOr<DecodedRecord> DecodeRecord(std::string_view text) {
  // Our own record: no size limit beyond what we wrote, but never an exception.
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError("record: not a JSON object");
  }
  DecodedRecord out;
  const json& name = j["name"];
  const json& labels = j["labels"];
  const json& revision = j["revision"];
  if (!name.is_string()) return absl::DataLossError("record: name: missing");
  out.meta.name = name.get<std::string>();
  if (!revision.is_number_integer() || revision.get<int64_t>() < 1) {
    return absl::DataLossError("record: revision: missing");
  }
  out.meta.revision = revision.get<int64_t>();
  if (!labels.is_object()) return absl::DataLossError("record: labels: missing");
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (!it.value().is_string()) return absl::DataLossError("record: labels: not strings");
    out.meta.labels[it.key()] = it.value().get<std::string>();
  }
  absl::Status s = TimeFromJson(j["create_time"], "create_time", &out.meta.create_time);
  if (s.ok()) s = TimeFromJson(j["update_time"], "update_time", &out.meta.update_time);
  if (!s.ok()) return s;
  for (const char* k : {"name", "labels", "revision", "create_time", "update_time"}) j.erase(k);
  auto schedule = Schedule::ImportState(j);
  if (!schedule.ok()) {
    return absl::DataLossError(
        absl::StrCat("record: state: ", std::string(schedule.status().message())));
  }
  out.schedule = *std::move(schedule);
  return out;
}

}  // namespace lrsched
