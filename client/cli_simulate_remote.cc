// Copyright lrsched authors.
//
// `lrsched simulate FILE --server=ADDR`: the local simulate's trace, byte for byte, computed by
// the server. It creates a temporary session (a unique name, labelled lrsched/temporary),
// records each group's lr (and momentum, weight_decay) before each Step RPC, as the local trace
// records them before each step() call, takes torch's state_dict from ExportState, and deletes the
// session afterwards, also when something fails. Input errors are checked here first, with the
// local simulate's messages and exit codes.
#include <unistd.h>

#include <cmath>
#include <iostream>
#include <random>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"
#include "client/trace_json.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"

namespace lrsched::cli {
namespace {

std::string TemporaryName() {
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return absl::StrFormat("tmp/simulate-%d-%016x", static_cast<int>(getpid()), r);
}

// Deletes the temporary session when the command ends, however it ends.
class SessionDeleter {
 public:
  SessionDeleter(Client* client, std::string name) : client_(client), name_(std::move(name)) {}
  ~SessionDeleter() {
    absl::Status s = client_->DeleteSession(name_);
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
      std::cerr << "lrsched: warning: could not delete temporary session " << name_ << ": "
                << s.message() << "\n";
    }
  }

 private:
  Client* client_;
  std::string name_;
};

void AppendRow(const v1::Session& s, Trace* t) {
  for (const v1::GroupValues& g : s.groups()) {
    t->lr.push_back(g.lr());
    if (t->has_momentum) t->momentum.push_back(g.momentum());
    if (t->has_weight_decay) t->weight_decay.push_back(g.weight_decay());
  }
}

// The argument checks lrsched::Simulate makes before stepping (same messages).
absl::Status CheckLengths(const SimulateInput& in) {
  if (!in.metrics.empty() && in.metrics.size() < static_cast<size_t>(in.steps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics: ", in.metrics.size(), " values for ", in.steps, " steps"));
  }
  if (!in.epochs.empty() && in.epochs.size() < static_cast<size_t>(in.steps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epochs: ", in.epochs.size(), " values for ", in.steps, " steps"));
  }
  return absl::OkStatus();
}

}  // namespace

int RunRemoteSimulate(const std::string& path) {
  auto in = ReadJsonFile(path);
  if (!in.ok()) return Fail(in.status(), kExitUsage);
  auto input = ReadSimulateInput(*in, absl::GetFlag(FLAGS_steps));
  if (!input.ok()) return Fail(input.status(), kExitUsage);
  // Before connecting: a trace past the server's limit would step for hours, one RPC a step.
  absl::Status s = CheckSimulateSize(*input);
  if (s.ok()) s = CheckLengths(*input);
  if (!s.ok()) return Fail(s, kExitUsage);

  auto client = ConnectFromFlags();
  if (!client.ok()) return Fail(client.status(), kExitUsage);
  Client& rpc = **client;
  const std::string name = TemporaryName();
  auto created = rpc.CreateSession(name, input->spec.dump(), {{"lrsched/temporary", "simulate"}});
  if (!created.ok()) {
    const absl::Status& err = created.status();
    constexpr absl::string_view kPrefix = "spec_json: ";
    if (err.code() == absl::StatusCode::kInvalidArgument &&
        absl::StartsWith(err.message(), kPrefix)) {
      // The engine refused the configuration: a result, as in the local simulate.
      std::string msg(err.message().substr(kPrefix.size()));
      std::cout << ConstructionErrorJson(msg).dump() << "\n";
      return kExitOk;
    }
    return Fail(err);
  }
  SessionDeleter deleter(&rpc, name);

  Trace trace;
  trace.groups = static_cast<size_t>(created->groups_size());
  trace.has_momentum = created->groups_size() > 0 && created->groups(0).has_momentum();
  trace.has_weight_decay = created->groups_size() > 0 && created->groups(0).has_weight_decay();
  v1::Session current = *std::move(created);
  for (int64_t i = 0; i < input->steps; ++i) {
    AppendRow(current, &trace);
    std::optional<double> metric, epoch;
    if (!input->metrics.empty() && !std::isnan(input->metrics[i])) metric = input->metrics[i];
    if (!input->epochs.empty()) epoch = input->epochs[i];
    auto r = rpc.Step(name, StepArgs{metric, epoch, current.last_epoch(), std::nullopt});
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
        // torch would have raised at this step: the trace ends here, as the local one does.
        trace.error = r.status();
        trace.error_at_step = i;
        break;
      }
      return Fail(r.status());
    }
    if (!r->advanced()) {
      return Fail(absl::AbortedError(
          absl::StrCat("temporary session ", name, " was stepped by another client")));
    }
    current = r->session();
  }
  nlohmann::json state_dict;
  if (trace.error.ok()) {
    auto ex = rpc.ExportState(name);
    if (!ex.ok()) return Fail(ex.status());
    state_dict = nlohmann::json::parse(ex->torch_state_dict_json(), nullptr,
                                       /*allow_exceptions=*/false);
    if (state_dict.is_discarded()) {
      return Fail(absl::DataLossError("ExportState: torch_state_dict_json is not JSON"));
    }
  }
  absl::Status written = WriteTraceJson(trace, state_dict, std::cout);
  if (!written.ok()) return Fail(written, kExitFailed);
  return kExitOk;
}

}  // namespace lrsched::cli
