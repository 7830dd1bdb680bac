// Copyright lrsched authors.
//
// `lrsched export NAME [--torch]` and `lrsched import NAME --state=FILE | --torch-spec=FILE
// --torch-state=FILE [--replace]`. The default export is lrsched's own versioned state (what
// import --state takes back). --torch prints {"state_dict": torch's scheduler.state_dict(),
// "param_groups": the optimizer's param groups}, the two parts of a torch checkpoint;
// import --torch-state accepts that object or a bare scheduler state_dict, with the spec from
// --torch-spec (whose optimizer.param_groups the checkpoint's "param_groups" replace).
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "scheduler/schedule.h"

namespace lrsched::cli {
namespace {

// The ImportStateRequest's source from the flags (INVALID_ARGUMENT: a usage error).
absl::Status SourceFromFlags(v1::ImportStateRequest* req) {
  const std::string state = absl::GetFlag(FLAGS_state);
  const std::string torch_spec = absl::GetFlag(FLAGS_torch_spec);
  const std::string torch_state = absl::GetFlag(FLAGS_torch_state);
  if (!state.empty() == (!torch_spec.empty() || !torch_state.empty())) {
    return absl::InvalidArgumentError(
        "import: give --state=FILE, or --torch-spec=FILE and --torch-state=FILE");
  }
  if (!state.empty()) {
    auto j = ReadJsonFile(state);
    if (!j.ok()) return j.status();
    req->set_state_json(j->dump());
    return absl::OkStatus();
  }
  if (torch_spec.empty() || torch_state.empty()) {
    return absl::InvalidArgumentError("import: --torch-spec and --torch-state go together");
  }
  auto spec_text = SpecFromFile(torch_spec);
  if (!spec_text.ok()) return spec_text.status();
  nlohmann::json spec = nlohmann::json::parse(*spec_text);
  auto st = ReadJsonFile(torch_state);
  if (!st.ok()) return st.status();
  nlohmann::json state_dict = *st;
  if (st->is_object() && st->contains("state_dict")) {  // `lrsched export --torch` output
    state_dict = (*st)["state_dict"];
    if (st->contains("param_groups")) spec["optimizer"]["param_groups"] = (*st)["param_groups"];
  }
  req->mutable_torch()->set_spec_json(spec.dump());
  req->mutable_torch()->set_state_dict_json(state_dict.dump());
  return absl::OkStatus();
}

}  // namespace

int RunExport(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError("usage: lrsched export NAME [--torch] > FILE"),
                kExitUsage);
  }
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto r = (*client)->ExportState(args[1]);
  if (!r.ok()) return Fail(r.status());
  if (!absl::GetFlag(FLAGS_torch)) {
    std::cout << r->state_json() << "\n";
    return kExitOk;
  }
  auto sd = nlohmann::json::parse(r->torch_state_dict_json(), nullptr, false);
  auto pg = nlohmann::json::parse(r->torch_param_groups_json(), nullptr, false);
  if (sd.is_discarded() || pg.is_discarded()) {
    return Fail(absl::DataLossError("ExportState: torch state is not JSON"));
  }
  std::cout << nlohmann::json{{"state_dict", sd}, {"param_groups", pg}}.dump() << "\n";
  return kExitOk;
}

int RunImport(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return Fail(
        absl::InvalidArgumentError("usage: lrsched import NAME (--state=FILE | --torch-spec=FILE "
                                   "--torch-state=FILE) [--replace] [--labels=k=v,...] [--json]"),
        kExitUsage);
  }
  v1::ImportStateRequest req;
  req.set_name(args[1]);
  req.set_replace(absl::GetFlag(FLAGS_replace));
  for (const std::string& kv : absl::GetFlag(FLAGS_labels)) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat("--labels: expected key=value, got ", kv)),
          kExitUsage);
    }
    (*req.mutable_labels())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  absl::Status s = SourceFromFlags(&req);
  if (!s.ok()) return Fail(s, kExitUsage);
  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  auto r = (*client)->ImportState(req);
  if (!r.ok()) return Fail(r.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << SessionJson(*r).dump() << "\n";
  } else {
    std::cout << "imported " << r->name() << " at last_epoch " << r->last_epoch() << "\n";
  }
  return kExitOk;
}

}  // namespace lrsched::cli
