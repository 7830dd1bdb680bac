// Copyright lrsched authors.
#include "server/registry/session.h"

#include "absl/strings/str_cat.h"
#include "scheduler/json_text.h"
#include "server/registry/record_frame.h"

namespace lrsched {
namespace {

using json = nlohmann::json;

constexpr const char* kTimeFormat = "%Y-%m-%dT%H:%M:%E*SZ";

std::string TimeText(absl::Time t) { return absl::FormatTime(kTimeFormat, t, absl::UTCTimeZone()); }

}  // namespace

void AppendRecordTime(absl::Time t, std::string* out) {
  const int64_t ns = absl::ToUnixNanos(t);  // saturates far from 1970
  if (ns < 0 || absl::FromUnixNanos(ns) != t) {
    // Before 1970, past 2262 or finer than a nanosecond: not worth a fast path.
    out->push_back('"');
    out->append(TimeText(t));
    out->push_back('"');
    return;
  }
  const int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil inverse, for
  // non-negative days).
  const int64_t z = secs / 86400 + 719468;
  const int64_t sod = secs % 86400;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char buf[40];
  char* p = buf;
  auto digits = [&p](int64_t v, int n) {
    for (int i = n - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
    p += n;
  };
  *p++ = '"';
  digits(year, 4);
  *p++ = '-';
  digits(month, 2);
  *p++ = '-';
  digits(day, 2);
  *p++ = 'T';
  digits(sod / 3600, 2);
  *p++ = ':';
  digits(sod / 60 % 60, 2);
  *p++ = ':';
  digits(sod % 60, 2);
  if (frac != 0) {  // %E*S: as many fractional digits as it takes, none when whole
    int n = 9;
    while (frac % 10 == 0) {
      frac /= 10;
      --n;
    }
    *p++ = '.';
    digits(frac, n);
  }
  *p++ = 'Z';
  *p++ = '"';
  out->append(buf, static_cast<size_t>(p - buf));
}

namespace {

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
  const bool has_weight_decay = s.drives_weight_decay();
  for (const ParamGroup& g : s.param_groups()) {
    GroupValue v;
    v.lr = g.lr;
    // The same value (and the same rule) as a trace's "momentum" column.
    if (has_momentum) v.momentum = g.reported_momentum().value_or(0.0);
    if (has_weight_decay) v.weight_decay = g.weight_decay.value_or(0.0);
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
  // Written on every step, so written directly as text: the spec, which never changes, as
  // the text the schedule keeps; the state by Schedule::AppendStateMembers; no tree.
  std::string text;
  text.reserve(kRecordHeaderBytes + s.spec_text().size() + 640);
  BeginRecord(&text);
  text.append("{\"spec\":").append(s.spec_text()).push_back(',');
  s.AppendStateMembers(&text);
  text.append(",\"name\":");
  json_text::AppendString(meta.name, &text);
  text.append(",\"labels\":{");
  bool first = true;
  for (const auto& [k, v] : meta.labels) {
    if (!first) text.push_back(',');
    first = false;
    json_text::AppendKey(k, &text);
    json_text::AppendString(v, &text);
  }
  text.push_back('}');
  text.append(",\"revision\":");
  json_text::AppendInt(meta.revision, &text);
  text.append(",\"schedule_revision\":");
  json_text::AppendInt(meta.schedule_revision, &text);
  text.append(",\"create_time\":");
  AppendRecordTime(meta.create_time, &text);
  text.append(",\"update_time\":");
  AppendRecordTime(meta.update_time, &text);
  text.push_back('}');
  SealRecord(&text);
  if (text.size() > kMaxRecordBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session state: ", text.size(), " bytes, more than the limit of ", kMaxRecordBytes));
  }
  return text;
}

absl::StatusOr<DecodedRecord> DecodeRecord(std::string_view record) {
  absl::StatusOr<OpenedRecord> opened = OpenRecord(record);
  if (!opened.ok()) return opened.status();
  const std::string_view text = opened->body;
  if (text.size() > kMaxRecordBytes) {
    return absl::DataLossError(absl::StrCat("record: ", text.size(), " bytes, more than the ",
                                            kMaxRecordBytes, " a record may have"));
  }
  // Checked, yet still bytes from disk: never an exception, depth bounded by the parse of the
  // state (Schedule::ImportState) and a format-1 record is not checksummed at all.
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError("record: not a JSON object");
  }
  DecodedRecord out;
  out.format = opened->format;
  const json& name = j["name"];
  const json& labels = j["labels"];
  const json& revision = j["revision"];
  if (!name.is_string()) return absl::DataLossError("record: name: missing");
  out.meta.name = name.get<std::string>();
  if (!revision.is_number_integer() || revision.get<int64_t>() < 1) {
    return absl::DataLossError("record: revision: missing");
  }
  out.meta.revision = revision.get<int64_t>();
  // Absent from records written before amendments existed: those were last defined at their
  // creation (revision 1).
  if (const auto sr = j.find("schedule_revision"); sr != j.end()) {
    if (!sr->is_number_integer() || sr->get<int64_t>() < 1 ||
        sr->get<int64_t>() > out.meta.revision) {
      return absl::DataLossError("record: schedule_revision: not a revision of the session");
    }
    out.meta.schedule_revision = sr->get<int64_t>();
  }
  if (!labels.is_object()) return absl::DataLossError("record: labels: missing");
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (!it.value().is_string()) return absl::DataLossError("record: labels: not strings");
    out.meta.labels[it.key()] = it.value().get<std::string>();
  }
  absl::Status s = TimeFromJson(j["create_time"], "create_time", &out.meta.create_time);
  if (s.ok()) s = TimeFromJson(j["update_time"], "update_time", &out.meta.update_time);
  if (!s.ok()) return s;
  for (const char* k :
       {"name", "labels", "revision", "schedule_revision", "create_time", "update_time"}) {
    j.erase(k);
  }
  auto schedule = Schedule::ImportState(j);
  if (!schedule.ok()) {
    return absl::DataLossError(
        absl::StrCat("record: state: ", std::string(schedule.status().message())));
  }
  out.schedule = *std::move(schedule);
  return out;
}

absl::StatusOr<DecodedRecord> DecodeRecordOf(std::string_view name, std::string_view record) {
  absl::StatusOr<DecodedRecord> out = DecodeRecord(record);
  if (out.ok() && out->meta.name != name) {
    return absl::DataLossError(absl::StrCat("record: holds session \"", out->meta.name,
                                            "\", not the one it is stored under"));
  }
  return out;
}

}  // namespace lrsched
