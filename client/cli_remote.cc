// Copyright lrsched authors.
//
// The `lrsched` subcommands that manage server sessions: create, step, get, list, delete.
#include <algorithm>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli.h"
#include "scheduler/schedule.h"

namespace lrsched::cli {
namespace {

// Numbers in their shortest round-trip form, lists as JSON ("[0.1,0.2]").
std::string Values(const nlohmann::json& list) { return list.dump(); }

std::string LabelsText(const v1::Session& s) {
  std::vector<std::string> kv;
  for (const auto& [k, v] : s.labels()) kv.push_back(absl::StrCat(k, "=", v));
  std::sort(kv.begin(), kv.end());
  return absl::StrJoin(kv, ",");
}

// One session as "key  value" lines.
void PrintSession(const v1::Session& s) {
  nlohmann::json j = SessionJson(s);
  std::vector<std::vector<std::string>> rows = {{"name", s.name()},
                                                {"type", s.scheduler_type()},
                                                {"last_epoch", absl::StrCat(s.last_epoch())},
                                                {"lr", Values(j["lr"])}};
  if (j.contains("momentum")) rows.push_back({"momentum", Values(j["momentum"])});
  if (j.contains("weight_decay")) rows.push_back({"weight_decay", Values(j["weight_decay"])});
  rows.push_back({"deterministic", s.deterministic() ? "yes" : "no"});
  rows.push_back({"revision", absl::StrCat(s.revision())});
  if (!s.labels().empty()) rows.push_back({"labels", LabelsText(s)});
  rows.push_back({"updated", j["update_time"].get<std::string>()});
  PrintTable(rows);
}

// A reply holding one session: JSON with --json, else the table. Returns the exit code.
int ShowSession(const v1::Session& s) {
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << SessionJson(s).dump() << "\n";
  } else {
    PrintSession(s);
  }
  return kExitOk;
}

absl::StatusOr<std::map<std::string, std::string>> LabelsFromFlag() {
  std::map<std::string, std::string> out;
  for (const std::string& kv : absl::GetFlag(FLAGS_labels)) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--labels: expected key=value, got ", kv));
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

}  // namespace

int RunCreate(const std::vector<std::string>& args) {
  if (args.size() != 2 || absl::GetFlag(FLAGS_spec).empty()) {
    return Fail(absl::InvalidArgumentError("usage: lrsched create NAME --spec=FILE"), kExitUsage);
  }
  auto spec = SpecFromFile(absl::GetFlag(FLAGS_spec));
  if (!spec.ok()) return Fail(spec.status(), kExitUsage);
  auto labels = LabelsFromFlag();
  if (!labels.ok()) return Fail(labels.status(), kExitUsage);
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto s = (*client)->CreateSession(args[1], *spec, *labels);
  if (!s.ok()) return Fail(s.status());
  return ShowSession(*s);
}

int RunStep(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError(
                    "usage: lrsched step NAME [--metric=X] [--epoch=E] [--if-epoch=K] "
                    "[--increment=N] [--json]"),
                kExitUsage);
  }
  const std::optional<double> metric = absl::GetFlag(FLAGS_metric);
  const std::optional<double> epoch = absl::GetFlag(FLAGS_epoch);
  const std::optional<int64_t> if_epoch = absl::GetFlag(FLAGS_if_epoch);
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto r =
      (*client)->Step(args[1], StepArgs{metric, epoch, if_epoch, absl::GetFlag(FLAGS_increment)});
  if (!r.ok()) return Fail(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = SessionJson(r->session());
    j["advanced"] = r->advanced();
    std::cout << j.dump() << "\n";
  } else {
    if (!r->advanced()) std::cout << "not advanced (last_epoch differs from --if-epoch)\n";
    PrintSession(r->session());
  }
  return kExitOk;
}

int RunGet(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError("usage: lrsched get NAME [--json] [--consistent]"),
                kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto s = (*client)->GetSession(args[1], absl::GetFlag(FLAGS_consistent));
  if (!s.ok()) return Fail(s.status());
  return ShowSession(*s);
}

int RunList(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    return Fail(absl::InvalidArgumentError("usage: lrsched list [--json] [--consistent]"),
                kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto sessions = (*client)->ListAllSessions("", absl::GetFlag(FLAGS_consistent));
  if (!sessions.ok()) return Fail(sessions.status());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json all = nlohmann::json::array();
    for (const v1::Session& s : *sessions) all.push_back(SessionJson(s));
    std::cout << nlohmann::json{{"sessions", all}}.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "TYPE", "EPOCH", "LR", "MOMENTUM", "REVISION", "LABELS"}};
  for (const v1::Session& s : *sessions) {
    nlohmann::json j = SessionJson(s);
    rows.push_back({s.name(), s.scheduler_type(), absl::StrCat(s.last_epoch()), Values(j["lr"]),
                    j.contains("momentum") ? Values(j["momentum"]) : "-",
                    absl::StrCat(s.revision()), s.labels().empty() ? "-" : LabelsText(s)});
  }
  PrintTable(rows);
  return kExitOk;
}

int RunDelete(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError("usage: lrsched delete NAME"), kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  absl::Status s = (*client)->DeleteSession(args[1]);
  if (!s.ok()) return Fail(s);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << nlohmann::json{{"deleted", args[1]}}.dump() << "\n";
  } else {
    std::cout << "deleted " << args[1] << "\n";
  }
  return kExitOk;
}

}  // namespace lrsched::cli
