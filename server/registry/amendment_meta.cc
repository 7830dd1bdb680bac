// Copyright lrsched authors.
#include "server/registry/amendment_meta.h"

namespace lrsched {
namespace {

constexpr const char* kTimeFormat = "%Y-%m-%dT%H:%M:%E*SZ";

std::string StringOf(const nlohmann::json& meta, const char* key) {
  auto it = meta.find(key);
  return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

nlohmann::json AmendmentMeta(const AmendmentRecord& record) {
  nlohmann::json meta = nlohmann::json::object();
  meta["revision"] = record.revision;
  meta["time"] = absl::FormatTime(kTimeFormat, record.time, absl::UTCTimeZone());
  meta["reason"] = record.reason;
  if (!record.caller.empty()) meta["caller"] = record.caller;
  if (!record.role.empty()) meta["role"] = record.role;
  return meta;
}

AmendmentRecord ReadAmendmentMeta(const nlohmann::json& meta) {
  AmendmentRecord out;
  if (!meta.is_object()) return out;
  if (auto it = meta.find("revision"); it != meta.end() && it->is_number_integer()) {
    out.revision = it->get<int64_t>();
  }
  std::string err;
  const std::string time = StringOf(meta, "time");
  if (!time.empty() && !absl::ParseTime(kTimeFormat, time, absl::UTCTimeZone(), &out.time, &err)) {
    out.time = absl::UnixEpoch();
  }
  out.reason = StringOf(meta, "reason");
  out.caller = StringOf(meta, "caller");
  out.role = StringOf(meta, "role");
  return out;
}

int64_t RecordedRevision(const Amendment& a) {
  if (!a.meta.is_object()) return 0;
  auto it = a.meta.find("revision");
  return it != a.meta.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace lrsched
