// Copyright lrsched authors.
//
// The `lrsched` subcommands that read a server without changing it: lr (GetLR, with lookahead
// and windows), watch (the Watch stream, one line per change) and health (grpc.health.v1).
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"

namespace lrsched::cli {
namespace {

std::string ValuesText(const nlohmann::json& j, const char* key) {
  return j.contains(key) ? j[key].dump() : "-";
}

// SIGINT ends `watch` normally: what was printed is all flushed already (one flush per line).
extern "C" void ExitOnInterrupt(int) { _exit(kExitOk); }

}  // namespace

int RunLr(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError(
                    "usage: lrsched lr NAME [--ahead=N] [--window=K] [--json] [--consistent]"),
                kExitUsage);
  }
  const int64_t ahead = absl::GetFlag(FLAGS_ahead);
  const int32_t window = absl::GetFlag(FLAGS_window);
  if (ahead < 0 || window < 0) {
    return Fail(absl::InvalidArgumentError("--ahead and --window must be >= 0"), kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto r = (*client)->GetLR(args[1], ahead, window, absl::GetFlag(FLAGS_consistent));
  if (!r.ok()) return Fail(r.status());
  nlohmann::json now = GroupsJson(r->groups());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = {{"name", r->name()},
                        {"last_epoch", r->last_epoch()},
                        {"revision", r->revision()},
                        {"epoch", r->epoch()}};
    j["lr"] = now["lr"];
    if (now.contains("momentum")) j["momentum"] = now["momentum"];
    if (now.contains("weight_decay")) j["weight_decay"] = now["weight_decay"];
    if (window > 0) {
      nlohmann::json w = nlohmann::json::array();
      for (const v1::EpochValues& e : r->window()) {
        nlohmann::json row = GroupsJson(e.groups());
        row["epoch"] = e.epoch();
        w.push_back(row);
      }
      j["window"] = w;
    }
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  // A WEIGHT_DECAY column only where the schedule drives it (Megatron's).
  const bool wd = now.contains("weight_decay");
  std::vector<std::vector<std::string>> rows = {{"EPOCH", "LR", "MOMENTUM"}};
  if (wd) rows[0].push_back("WEIGHT_DECAY");
  auto add = [&](std::string epoch, const nlohmann::json& v) {
    rows.push_back({std::move(epoch), v["lr"].dump(), ValuesText(v, "momentum")});
    if (wd) rows.back().push_back(ValuesText(v, "weight_decay"));
  };
  if (window > 0) {
    for (const v1::EpochValues& e : r->window()) {
      add(absl::StrCat(e.epoch()), GroupsJson(e.groups()));
    }
  } else {
    add(absl::StrCat(r->epoch()), now);
  }
  PrintTable(rows);
  return kExitOk;
}

int RunWatch(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError("usage: lrsched watch NAME [--json]"), kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  std::signal(SIGINT, ExitOnInterrupt);
  const bool json = absl::GetFlag(FLAGS_json);
  bool seen = false;
  absl::Status s = (*client)->Watch(args[1], [&](const v1::Session& session) {
    seen = true;
    nlohmann::json j = SessionJson(session);
    if (json) {
      j.erase("spec");  // the same on every line; `get` shows it
      std::cout << j.dump() << std::endl;
    } else {
      std::cout << "epoch=" << session.last_epoch() << " lr=" << j["lr"].dump();
      if (j.contains("momentum")) std::cout << " momentum=" << j["momentum"].dump();
      if (j.contains("weight_decay")) std::cout << " weight_decay=" << j["weight_decay"].dump();
      std::cout << " revision=" << session.revision() << std::endl;
    }
    return true;
  });
  if (s.code() == absl::StatusCode::kNotFound && seen) {
    std::cerr << "lrsched: session " << args[1] << " was deleted\n";
    return kExitOk;
  }
  return Fail(s);
}

int RunHealth(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    return Fail(absl::InvalidArgumentError("usage: lrsched health [--json]"), kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto h = (*client)->Health("");
  if (!h.ok()) return Fail(h.status());
  const char* name = HealthStatusName(*h);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << nlohmann::json{{"status", name}}.dump() << "\n";
  } else {
    std::cout << name << "\n";
  }
  return *h == HealthStatus::kServing ? kExitOk : kExitNotServing;
}

}  // namespace lrsched::cli
