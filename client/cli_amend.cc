// Copyright lrsched authors.
//
// `lrsched amend` and `lrsched history` (README "Changing a running schedule"):
//   amend NAME (--continue-with=SPEC.json | --set KEY=VALUE... | --scale=F) [--at-epoch=E]
//         [--groups=0,2] [--reason=TEXT] [--if-revision=R] [--dry-run [--window=K]] [--json]
//   history NAME [--from=E] [--to=E] [--json]
// --set values are read as JSON where they parse (300, 1e-5, true, "x", [1,2]) and as strings
// otherwise (--set anneal_strategy=linear); a repeated KEY is an error. A dry run prints the
// epochs from at_epoch as they are and as they would be, side by side.
#include <cmath>
#include <iostream>
#include <set>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli.h"

namespace lrsched::cli {
namespace {

// The --set arguments TakeSetFlags removed, in order.
std::vector<std::string>& SetArgs() {
  static std::vector<std::string>* args = new std::vector<std::string>();
  return *args;
}
bool& SetGiven() {
  static bool given = false;
  return given;
}

constexpr size_t kMaxReasonBytes = 1024;  // AmendSessionRequest.reason

absl::Status Bad(const std::string& message) { return absl::InvalidArgumentError(message); }

// reparameterize_json from KEY=VALUE items.
absl::StatusOr<std::string> ReparameterizeJson(const std::vector<std::string>& items) {
  if (items.empty()) return Bad("--set: expected KEY=VALUE (e.g. --set T_max=300)");
  nlohmann::json args = nlohmann::json::object();
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Bad(absl::StrCat("--set: expected KEY=VALUE, got '", item, "'"));
    }
    std::string key = item.substr(0, eq), text = item.substr(eq + 1);
    if (args.contains(key)) return Bad(absl::StrCat("--set: ", key, " given twice"));
    if (text.empty()) return Bad(absl::StrCat("--set: ", key, ": empty value"));
    nlohmann::json v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    // A word that is not JSON is a string: --set anneal_strategy=linear.
    args[key] = v.is_discarded() ? nlohmann::json(text) : v;
  }
  return args.dump();
}

absl::StatusOr<std::vector<int32_t>> ParseGroups(const std::string& text) {
  std::vector<int32_t> groups;
  std::set<int32_t> seen;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int32_t g = 0;
    if (!absl::SimpleAtoi(part, &g) || g < 0) {
      return Bad(absl::StrCat("--groups: expected param group indices like 0,2, got '", text, "'"));
    }
    if (!seen.insert(g).second) return Bad(absl::StrCat("--groups: group ", g, " given twice"));
    groups.push_back(g);
  }
  return groups;
}

nlohmann::json EpochRows(const google::protobuf::RepeatedPtrField<v1::EpochValues>& epochs) {
  nlohmann::json rows = nlohmann::json::array();
  for (const v1::EpochValues& e : epochs) {
    nlohmann::json row = GroupsJson(e.groups());
    row["epoch"] = e.epoch();
    rows.push_back(row);
  }
  return rows;
}

std::string Cell(const nlohmann::json& row, const char* key) {
  return row.contains(key) ? row[key].dump() : "-";
}

void PrintAmendment(const std::string& name, const v1::Amendment& a, bool dry_run) {
  std::cout << (dry_run ? "dry run: would amend " : "amended ") << name << ": " << a.kind() << " "
            << a.args_json() << " at epoch " << a.at_epoch();
  if (!dry_run) {
    std::cout << " (revision " << a.revision() << ", " << (a.applied() ? "in force" : "pending")
              << ")";
  }
  std::cout << "\n";
  bool jumps = false;
  for (double j : a.jump()) jumps = jumps || j != 0;
  if (jumps)
    std::cout << "jump at epoch " << a.at_epoch() << ": " << AmendmentJson(a)["jump"]
              << " (lr with it minus without it, per group)\n";
}

}  // namespace

void TakeSetFlags(std::vector<std::string>* args) {
  std::vector<std::string> kept;
  bool flags_done = false;
  for (size_t i = 0; i < args->size(); ++i) {
    const std::string& a = (*args)[i];
    if (i > 0 && !flags_done && a == "--") flags_done = true;
    if (i == 0 || flags_done) {
      kept.push_back(a);
      continue;
    }
    if (a == "--set" || a == "-set") {
      SetGiven() = true;
      if (i + 1 < args->size()) SetArgs().push_back((*args)[++i]);
      continue;
    }
    if (a.rfind("--set=", 0) == 0 || a.rfind("-set=", 0) == 0) {
      SetGiven() = true;
      SetArgs().push_back(a.substr(a.find('=') + 1));
      continue;
    }
    kept.push_back(a);
  }
  *args = std::move(kept);
}

bool AmendFlagsGiven() {
  return SetGiven() || !absl::GetFlag(FLAGS_continue_with).empty() ||
         absl::GetFlag(FLAGS_scale).has_value();
}

absl::StatusOr<v1::AmendSessionRequest> AmendRequestFromFlags(const std::string& name) {
  v1::AmendSessionRequest req;
  req.set_name(name);
  const std::string continue_with = absl::GetFlag(FLAGS_continue_with);
  const std::optional<double> scale = absl::GetFlag(FLAGS_scale);
  const std::string groups = absl::GetFlag(FLAGS_groups);
  int kinds = (continue_with.empty() ? 0 : 1) + (SetGiven() ? 1 : 0) + (scale ? 1 : 0);
  if (kinds != 1) {
    return Bad(
        "amend: give exactly one of --continue-with=SPEC.json, --set KEY=VALUE, "
        "--scale=F");
  }
  if (!groups.empty() && !scale) return Bad("--groups: only with --scale");
  if (!continue_with.empty()) {
    auto spec = ReadJsonFile(continue_with);
    if (!spec.ok()) {
      return Bad(absl::StrCat("--continue-with: ", spec.status().message()));
    }
    if (!spec->is_object()) {
      return Bad(absl::StrCat("--continue-with: ", continue_with,
                              ": expected a JSON object (a scheduler spec)"));
    }
    req.set_continue_with_json(spec->dump());
  } else if (SetGiven()) {
    auto args = ReparameterizeJson(SetArgs());
    if (!args.ok()) return args.status();
    req.set_reparameterize_json(*args);
  } else {
    if (!std::isfinite(*scale) || *scale <= 0) {
      return Bad(absl::StrCat("--scale: must be a finite number > 0, got ", *scale));
    }
    req.mutable_scale()->set_factor(*scale);
    if (!groups.empty()) {
      auto g = ParseGroups(groups);
      if (!g.ok()) return g.status();
      for (int32_t i : *g) req.mutable_scale()->add_groups(i);
    }
  }
  if (auto e = absl::GetFlag(FLAGS_at_epoch)) {
    if (*e < 0) return Bad(absl::StrCat("--at-epoch: must be >= 0, got ", *e));
    req.set_at_epoch(*e);
  }
  const std::string reason = absl::GetFlag(FLAGS_reason);
  if (reason.size() > kMaxReasonBytes) {
    return Bad(absl::StrCat("--reason: at most ", kMaxReasonBytes, " bytes, got ", reason.size()));
  }
  req.set_reason(reason);
  if (auto r = absl::GetFlag(FLAGS_if_revision)) {
    if (*r < 0) return Bad(absl::StrCat("--if-revision: must be >= 0, got ", *r));
    req.set_if_revision(*r);
  }
  req.set_dry_run(absl::GetFlag(FLAGS_dry_run));
  const int32_t window = absl::GetFlag(FLAGS_window);
  if (window < 0 || window > 10000) {
    return Bad(absl::StrCat("--window: must be in 0..10000 (0: 100), got ", window));
  }
  if (window > 0 && !req.dry_run()) return Bad("--window: only with --dry-run");
  req.set_dry_run_window(window);
  return req;
}

nlohmann::json AmendmentJson(const v1::Amendment& a) {
  nlohmann::json j;
  j["at_epoch"] = a.at_epoch();
  j["kind"] = a.kind();
  nlohmann::json args = nlohmann::json::parse(a.args_json(), nullptr, false);
  j["args"] = args.is_discarded() ? nlohmann::json(a.args_json()) : args;
  j["reason"] = a.reason();
  j["revision"] = a.revision();
  j["time"] = TimeText(a.time());
  j["caller"] = a.caller();
  j["role"] = a.role();
  j["applied"] = a.applied();
  j["jump"] = nlohmann::json(std::vector<double>(a.jump().begin(), a.jump().end()));
  return j;
}

int RunAmend(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(Bad("usage: lrsched amend NAME (--continue-with=SPEC.json | --set KEY=VALUE... "
                    "| --scale=F) [--at-epoch=E] [--groups=0,2] [--reason=TEXT] "
                    "[--if-revision=R] [--dry-run [--window=K]] [--json]"),
                kExitUsage);
  }
  auto req = AmendRequestFromFlags(args[1]);
  if (!req.ok()) return Fail(req.status(), kExitUsage);
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto r = (*client)->Amend(*req);
  if (!r.ok()) return Fail(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = {{"dry_run", req->dry_run()},
                        {"amendment", AmendmentJson(r->amendment())},
                        {"session", SessionJson(r->session())}};
    if (req->dry_run()) {
      j["current"] = EpochRows(r->current());
      j["amended"] = EpochRows(r->amended());
    }
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  PrintAmendment(args[1], r->amendment(), req->dry_run());
  if (!req->dry_run()) return kExitOk;
  // Both futures side by side; a momentum column pair where the optimizer has one.
  nlohmann::json current = EpochRows(r->current()), amended = EpochRows(r->amended());
  const bool momentum = !current.empty() && current[0].contains("momentum");
  std::vector<std::vector<std::string>> rows = {{"EPOCH", "LR_NOW", "LR_AMENDED"}};
  if (momentum) {
    rows[0].push_back("MOMENTUM_NOW");
    rows[0].push_back("MOMENTUM_AMENDED");
  }
  for (size_t i = 0; i < current.size() || i < amended.size(); ++i) {
    nlohmann::json c = i < current.size() ? current[i] : nlohmann::json::object();
    nlohmann::json a = i < amended.size() ? amended[i] : nlohmann::json::object();
    std::string epoch = c.contains("epoch") ? c["epoch"].dump() : Cell(a, "epoch");
    rows.push_back({epoch, Cell(c, "lr"), Cell(a, "lr")});
    if (momentum) {
      rows.back().push_back(Cell(c, "momentum"));
      rows.back().push_back(Cell(a, "momentum"));
    }
  }
  PrintTable(rows);
  return kExitOk;
}

int RunHistory(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(Bad("usage: lrsched history NAME [--from=E] [--to=E] [--json]"), kExitUsage);
  }
  const int64_t from = absl::GetFlag(FLAGS_from);
  const std::optional<int64_t> to = absl::GetFlag(FLAGS_to);
  if (from < 0) return Fail(Bad(absl::StrCat("--from: must be >= 0, got ", from)), kExitUsage);
  if (to && *to < from) {
    return Fail(Bad(absl::StrCat("--to: must be >= --from (", from, "), got ", *to)), kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto h = (*client)->History(args[1], from, to);
  if (!h.ok()) return Fail(h.status());
  nlohmann::json amendments = nlohmann::json::array();
  for (const v1::Amendment& a : h->amendments()) amendments.push_back(AmendmentJson(a));
  nlohmann::json epochs = EpochRows(h->epochs());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json spec = nlohmann::json::parse(h->spec_json(), nullptr, false);
    nlohmann::json j = {{"name", args[1]},
                        {"spec", spec.is_discarded() ? nlohmann::json(h->spec_json()) : spec},
                        {"first_epoch", h->first_epoch()},
                        {"amendments", amendments},
                        {"epochs", epochs}};
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::cout << "spec: " << h->spec_json() << "\n";
  std::cout << "record from epoch " << h->first_epoch() << "\n";
  if (!amendments.empty()) {
    std::vector<std::vector<std::string>> rows = {
        {"AT_EPOCH", "KIND", "ARGS", "REASON", "REVISION", "TIME", "CALLER", "APPLIED"}};
    for (const nlohmann::json& a : amendments) {
      std::string caller = a["caller"].get<std::string>();
      if (!a["role"].get<std::string>().empty())
        caller += " (" + a["role"].get<std::string>() + ")";
      rows.push_back({a["at_epoch"].dump(), a["kind"].get<std::string>(), a["args"].dump(),
                      a["reason"].get<std::string>(), a["revision"].dump(),
                      a["time"].get<std::string>(), caller.empty() ? "-" : caller,
                      a["applied"].get<bool>() ? "yes" : "pending"});
    }
    PrintTable(rows);
    std::cout << "\n";
  }
  const bool momentum = !epochs.empty() && epochs[0].contains("momentum");
  const bool wd = !epochs.empty() && epochs[0].contains("weight_decay");
  std::vector<std::vector<std::string>> rows = {{"EPOCH", "LR"}};
  if (momentum) rows[0].push_back("MOMENTUM");
  if (wd) rows[0].push_back("WEIGHT_DECAY");
  for (const nlohmann::json& e : epochs) {
    rows.push_back({e["epoch"].dump(), e["lr"].dump()});
    if (momentum) rows.back().push_back(Cell(e, "momentum"));
    if (wd) rows.back().push_back(Cell(e, "weight_decay"));
  }
  PrintTable(rows);
  return kExitOk;
}

}  // namespace lrsched::cli
