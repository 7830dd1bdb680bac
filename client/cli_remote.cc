// Copyright lrsched authors.
//
// The `lrsched` subcommands that manage server sessions: create, step, get, list, delete.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli.h"
#include "scheduler/schedule.h"

namespace lrsched::cli {
namespace {

// "lr=[0.1, 0.2]" style lists, numbers in their shortest round-trip form.
std::string Values(const nlohmann::json& list) { return list.dump(); }

void PrintSession(const v1::Session& s) {
  nlohmann::json j = SessionJson(s);
  std::cout << "name=" << s.name() << " type=" << s.scheduler_type()
            << " last_epoch=" << s.last_epoch() << " lr=" << Values(j["lr"]);
  if (j.contains("momentum")) std::cout << " momentum=" << Values(j["momentum"]);
  std::cout << " revision=" << s.revision();
  if (!s.labels().empty()) {
    std::vector<std::string> kv;
    for (const auto& [k, v] : j["labels"].items()) kv.push_back(absl::StrCat(k, "=", v.get<std::string>()));
    std::cout << " labels=" << absl::StrJoin(kv, ",");
  }
  std::cout << "\n";
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

// The {"optimizer", "scheduler"} part of a spec file (a golden line's other keys are dropped).
absl::StatusOr<std::string> SpecFromFile(const std::string& path) {
  std::string text;
  if (!ReadAll(path, &text)) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  auto in = ParseJson(text, path);
  if (!in.ok()) return in.status();
  if (!in->is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": expected a JSON object"));
  nlohmann::json spec = nlohmann::json::object();
  for (const char* k : {"optimizer", "scheduler"}) {
    if (!in->contains(k)) return absl::InvalidArgumentError(absl::StrCat(path, ": ", k, ": required"));
    spec[k] = (*in)[k];
  }
  return spec.dump();
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
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << SessionJson(*s).dump() << "\n";
  } else {
    PrintSession(*s);
  }
  return kExitOk;
}

int RunStep(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError(
                    "usage: lrsched step NAME [--metric=X] [--epoch=E] [--if-epoch=K] [--json]"),
                kExitUsage);
  }
  const std::optional<double> metric = absl::GetFlag(FLAGS_metric);
  const std::optional<double> epoch = absl::GetFlag(FLAGS_epoch);
  const std::optional<int64_t> if_epoch = absl::GetFlag(FLAGS_if_epoch);
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto r = (*client)->Step(args[1], metric, epoch, if_epoch);
  if (!r.ok()) return Fail(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = SessionJson(r->session());
    j["advanced"] = r->advanced();
    std::cout << j.dump() << "\n";
  } else {
    if (!r->advanced()) std::cout << "not advanced (last_epoch differs from --if-epoch): ";
    PrintSession(r->session());
  }
  return kExitOk;
}

int RunGet(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError("usage: lrsched get NAME [--json]"), kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto s = (*client)->GetSession(args[1]);
  if (!s.ok()) return Fail(s.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << SessionJson(*s).dump() << "\n";
  } else {
    PrintSession(*s);
  }
  return kExitOk;
}

int RunList(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    return Fail(absl::InvalidArgumentError("usage: lrsched list [--json]"), kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  nlohmann::json all = nlohmann::json::array();
  std::string token;
  // Bounded: the server holds at most --max_sessions sessions, 1000 per page.
  for (int page = 0; page < 100000; ++page) {
    auto r = (*client)->ListSessions("", token);
    if (!r.ok()) return Fail(r.status());
    for (const v1::Session& s : r->sessions()) {
      if (absl::GetFlag(FLAGS_json)) {
        all.push_back(SessionJson(s));
      } else {
        PrintSession(s);
      }
    }
    token = r->next_page_token();
    if (token.empty()) break;
  }
  if (absl::GetFlag(FLAGS_json)) std::cout << nlohmann::json{{"sessions", all}}.dump() << "\n";
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
  return kExitOk;
}

}  // namespace lrsched::cli
