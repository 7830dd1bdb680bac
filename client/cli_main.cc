// Copyright lrsched authors.
//
// `lrsched`: the command-line client. Subcommands:
//   simulate FILE [--steps=N]        trace a torch-style spec locally (FILE "-" reads stdin)
//   simulate FILE --server=ADDR      the same trace, computed by a temporary server session
//   create NAME --spec=FILE [--labels=k=v,...]
//   step NAME [--metric=X] [--epoch=E] [--if-epoch=K] [--json]
//   get NAME [--json]
//   list [--json]
//   delete NAME
// Remote commands use --server=HOST:PORT (default 127.0.0.1:50051), --timeout, and for TLS
// --tls_ca (plus --tls_cert/--tls_key for a client certificate).
// Exit codes: 0 success (a refused configuration is still a simulate result: it is in the
// JSON), 1 the server refused the request or could not be reached, 2 unreadable input or bad
// usage.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/cli.h"
#include "client/trace_json.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"

ABSL_FLAG(int64_t, steps, -1, "simulate: number of steps (overrides the file's \"steps\")");
ABSL_FLAG(std::optional<std::string>, server, std::nullopt,
          "lrsched-server address, default 127.0.0.1:50051 (simulate: compute remotely if given)");
ABSL_FLAG(std::string, spec, "", "create: JSON file with \"optimizer\" and \"scheduler\"");
ABSL_FLAG(std::optional<double>, metric, std::nullopt, "step: the metric (ReduceLROnPlateau)");
ABSL_FLAG(std::optional<double>, epoch, std::nullopt, "step: step(epoch)");
ABSL_FLAG(std::optional<int64_t>, if_epoch, std::nullopt,
          "step: step only if the session's last_epoch equals this");
ABSL_FLAG(bool, json, false, "print JSON");
ABSL_FLAG(std::vector<std::string>, labels, {}, "create: labels, as key=value,key=value");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each call to the server");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA file: connect with TLS, verifying the server");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mutual TLS; with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM client private key");

namespace lrsched::cli {
namespace {

constexpr const char* kUsage =
    "usage: lrsched simulate FILE [--steps=N] [--server=ADDR]\n"
    "       lrsched create NAME --spec=FILE [--labels=k=v,...] [--json]\n"
    "       lrsched step NAME [--metric=X] [--epoch=E] [--if-epoch=K] [--json]\n"
    "       lrsched get NAME [--json]\n"
    "       lrsched list [--json]\n"
    "       lrsched delete NAME\n"
    "  remote commands: --server=HOST:PORT (default 127.0.0.1:50051) --timeout=30s\n"
    "                   --tls_ca=FILE [--tls_cert=FILE --tls_key=FILE]\n";

int Usage() {
  std::cerr << kUsage;
  return kExitUsage;
}

int RunLocalSimulate(const std::string& path) {
  std::string text;
  if (!ReadAll(path, &text)) {
    std::cerr << "lrsched: cannot read " << path << "\n";
    return kExitUsage;
  }
  auto in = ParseJson(text, path);
  if (!in.ok()) {
    std::cerr << "lrsched: " << in.status().message() << "\n";
    return kExitUsage;
  }
  auto input = ReadSimulateInput(*in, absl::GetFlag(FLAGS_steps));
  if (!input.ok()) {
    std::cerr << "lrsched: " << input.status().message() << "\n";
    return kExitUsage;
  }
  auto schedule = Schedule::Create(input->spec);
  if (!schedule.ok()) {
    std::cout << ConstructionErrorJson(std::string(schedule.status().message())).dump() << "\n";
    return kExitOk;
  }
  Trace trace;
  absl::Status s = lrsched::Simulate(**schedule, input->steps, input->metrics, input->epochs,
                                     &trace);
  if (!s.ok()) {
    std::cerr << "lrsched: " << s.message() << "\n";
    return kExitUsage;
  }
  std::cout << TraceJson(trace, (*schedule)->StateDict()).dump() << "\n";
  return kExitOk;
}

}  // namespace
}  // namespace lrsched::cli

int main(int argc, char** argv) {
  using namespace lrsched::cli;  // NOLINT: the subcommands
  absl::SetProgramUsageMessage(kUsage);
  std::vector<std::string> normalized = NormalizeFlagArgs(argc, argv);
  std::vector<char*> cargs;
  for (std::string& a : normalized) cargs.push_back(a.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(cargs.size()), cargs.data());
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  if (args.empty()) return Usage();
  const std::string& cmd = args[0];
  if (cmd == "simulate") {
    if (args.size() != 2) return Usage();
    if (absl::GetFlag(FLAGS_server).has_value()) {
      return RunRemoteSimulate(args[1]);
    }
    return RunLocalSimulate(args[1]);
  }
  if (cmd == "create") return RunCreate(args);
  if (cmd == "step") return RunStep(args);
  if (cmd == "get") return RunGet(args);
  if (cmd == "list") return RunList(args);
  if (cmd == "delete") return RunDelete(args);
  return Usage();
}
