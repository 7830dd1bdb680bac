// Copyright lrsched authors.
//
// `lrsched`: the command-line client; kUsage below lists the subcommands, flags and the
// exit-code contract (cli.h) as `lrsched --help` shows them.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "client/cli.h"
#include "client/trace_json.h"
#include "openssl/crypto.h"
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
ABSL_FLAG(std::optional<int64_t>, increment, std::nullopt,
          "step: megatron.OptimizerParamScheduler's step(increment) (e.g. the global batch size)");
ABSL_FLAG(bool, json, false, "print JSON");
ABSL_FLAG(bool, consistent, false,
          "get, list, lr: read the store itself (etcd), not the replica's memory");
ABSL_FLAG(std::vector<std::string>, labels, {}, "create: labels, as key=value,key=value");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each call to the server");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA file: connect with TLS, verifying the server");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mutual TLS; with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM client private key");
ABSL_FLAG(std::string, token, "",
          "bearer token sent as `authorization: Bearer TOKEN` (default: $LRSCHED_TOKEN)");
ABSL_FLAG(int64_t, ahead, 0, "lr: the values after this many more step() calls");
ABSL_FLAG(int32_t, window, 0, "lr: also the next K epochs' values");
ABSL_FLAG(bool, torch, false, "export: torch's state_dict and param_groups instead");
ABSL_FLAG(std::string, state, "", "import: a file written by `lrsched export`");
ABSL_FLAG(std::string, torch_spec, "", "import: the spec of a torch checkpoint");
ABSL_FLAG(std::string, torch_state, "",
          "import: torch's scheduler.state_dict() as JSON (or `lrsched export --torch` output)");
ABSL_FLAG(bool, replace, false, "import: overwrite an existing session");
ABSL_FLAG(std::string, out, "", "plot: the SVG file to write");
ABSL_FLAG(std::vector<std::string>, session, {}, "plot: live sessions to plot (NAME,NAME)");
ABSL_FLAG(std::string, title, "", "plot: the title");
ABSL_FLAG(std::string, continue_with, "",
          "amend: a JSON file with the scheduler spec that takes over at --at-epoch");
ABSL_FLAG(std::vector<std::string>, set, {},
          "amend: KEY=VALUE, a keyword argument of the schedule in force changed (repeatable; "
          "VALUE read as JSON where it parses, else as a string)");
ABSL_FLAG(std::optional<double>, scale, std::nullopt,
          "amend: multiply every lr (of --groups) by this factor from --at-epoch on");
ABSL_FLAG(std::optional<int64_t>, at_epoch, std::nullopt,
          "amend: the session's last_epoch at which the amendment takes effect (default: now)");
ABSL_FLAG(std::string, groups, "", "amend --scale: the param groups it applies to (0,2)");
ABSL_FLAG(std::string, reason, "", "amend: why (kept in the record; at most 1024 bytes)");
ABSL_FLAG(std::optional<int64_t>, if_revision, std::nullopt,
          "amend: apply only if the session's revision equals this (else ABORTED)");
ABSL_FLAG(bool, dry_run, false,
          "amend, plot: change nothing; show the next --window epochs with and without it");
ABSL_FLAG(int64_t, from, 0, "history: the first epoch");
ABSL_FLAG(std::optional<int64_t>, to, std::nullopt, "history: the last epoch (default: now)");

namespace lrsched::cli {
namespace {

constexpr const char* kUsage =
    "usage: lrsched COMMAND [ARGS] [FLAGS]   (flags may stand anywhere; --a-b = --a_b)\n"
    "  simulate FILE [--steps=N] [--server=ADDR]   trace a spec (locally, or on the server)\n"
    "  create NAME --spec=FILE [--labels=k=v,...]\n"
    "  get NAME | list | delete NAME\n"
    "  step NAME [--metric=X] [--epoch=E] [--if-epoch=K] [--increment=N]\n"
    "  lr NAME [--ahead=N] [--window=K]          values now, N steps ahead, or K epochs\n"
    "  watch NAME                                one line per change until Ctrl-C / deleted\n"
    "  export NAME [--torch] > FILE\n"
    "  import NAME --state=FILE | --torch-spec=FILE --torch-state=FILE [--replace]\n"
    "  plot FILE... [--session=NAME,...] --out=OUT.svg [--steps=N] [--title=T]\n"
    "       (a session: its record solid, the lookahead dashed, amendments marked;\n"
    "        --dry-run with amend flags: both futures)\n"
    "  amend NAME (--continue-with=SPEC.json | --set KEY=VALUE... | --scale=F)\n"
    "        [--at-epoch=E] [--groups=0,2] [--reason=TEXT] [--if-revision=R]\n"
    "        [--dry-run [--window=K]]             change a running schedule\n"
    "  history NAME [--from=E] [--to=E]          the spec, amendments, values served\n"
    "  health                                    prints SERVING / NOT_SERVING\n"
    "output: tables for people; --json for one JSON document (a line per change for watch)\n"
    "server: --server=HOST:PORT (default 127.0.0.1:50051) --timeout=30s --token=T\n"
    "        (or $LRSCHED_TOKEN) --tls_ca=FILE [--tls_cert=FILE --tls_key=FILE]\n"
    "exit codes: 0 success (simulate: a refused spec is a result, in the JSON)\n"
    "            1 the server refused the request (stderr names the gRPC code),\n"
    "              or the output could not be written (simulate)\n"
    "            2 bad usage or unreadable input\n"
    "            3 server unreachable or UNAVAILABLE, or the deadline passed\n"
    "            4 no such session (NOT_FOUND)\n"
    "            5 health: the server answers but is NOT_SERVING\n";

// `--help` lists the flags defined in this file (absl's default looks for a file named after
// the program, lrsched.cc, finds none and says "No flags matched"); gRPC's and Abseil's own
// flags stay out of it (--helpfull shows everything).
void ConfigureHelp() {
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "client/cli_main.cc");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  // Flags are grouped under their file; show it from the project's root, not the build's path.
  config.normalize_filename = [](absl::string_view file) {
    size_t at = file.rfind("client/");
    return std::string(at == absl::string_view::npos ? file : file.substr(at));
  };
  absl::SetFlagsUsageConfig(config);
}

int Usage() {
  std::cerr << kUsage;
  return kExitUsage;
}

int RunLocalSimulate(const std::string& path) {
  auto in = ReadJsonFile(path);
  if (!in.ok()) return Fail(in.status(), kExitUsage);
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
  absl::Status size = CheckSimulateSize(*input);
  if (!size.ok()) {
    std::cerr << "lrsched: " << size.message() << "\n";
    return kExitUsage;
  }
  Trace trace;
  absl::Status s =
      lrsched::Simulate(**schedule, input->steps, input->metrics, input->epochs, &trace);
  if (!s.ok()) {
    std::cerr << "lrsched: " << s.message() << "\n";
    return kExitUsage;
  }
  absl::Status written = WriteTraceJson(trace, (*schedule)->StateDict(), std::cout);
  if (!written.ok()) return Fail(written, kExitFailed);
  return kExitOk;
}

}  // namespace
}  // namespace lrsched::cli

int main(int argc, char** argv) {
  using namespace lrsched::cli;  // NOLINT: the subcommands
  // gRPC's own threads outlive main() (its thread pool is not joined at exit) and may be in a
  // TLS handshake then. OpenSSL's atexit cleanup would free its per-thread state under them:
  // LeakSanitizer saw the orphaned per-thread random generators in ~1% of failed mTLS
  // handshakes (tests/python/test_server_process.py::test_mutual_tls). Leave OpenSSL's state
  // to the process's end instead.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
  absl::SetProgramUsageMessage(kUsage);
  ConfigureHelp();
  std::vector<std::string> normalized = NormalizeFlagArgs(argc, argv);
  TakeSetFlags(&normalized);  // repeatable; absl would keep only the last
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
  if (cmd == "lr") return RunLr(args);
  if (cmd == "watch") return RunWatch(args);
  if (cmd == "health") return RunHealth(args);
  if (cmd == "export") return RunExport(args);
  if (cmd == "import") return RunImport(args);
  if (cmd == "plot") return RunPlot(args);
  if (cmd == "amend") return RunAmend(args);
  if (cmd == "history") return RunHistory(args);
  if (cmd == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  return Usage();
}
