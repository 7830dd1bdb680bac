// Copyright lrsched authors.
//
// Shared pieces of the `lrsched` command-line client: its flags (defined in cli_main.cc), exit
// codes, and the subcommands (cli_remote.cc: create/get/list/delete/step; cli_read.cc: lr,
// watch, health; cli_state.cc: export/import; cli_plot.cc: plot; cli_simulate_remote.cc;
// cli_amend.cc: amend, history).
//
// Flags may stand before or after the subcommand. Flag names may be spelled with dashes
// (--if-epoch) or underscores (--if_epoch); NormalizeFlagArgs rewrites the former before absl
// parses them.
#ifndef LRSCHED_CLIENT_CLI_H_
#define LRSCHED_CLIENT_CLI_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "lrsched/v1/lrsched.pb.h"
#include "nlohmann/json.hpp"

ABSL_DECLARE_FLAG(int64_t, steps);
ABSL_DECLARE_FLAG(std::optional<std::string>, server);
ABSL_DECLARE_FLAG(std::string, spec);
ABSL_DECLARE_FLAG(std::optional<double>, metric);
ABSL_DECLARE_FLAG(std::optional<double>, epoch);
ABSL_DECLARE_FLAG(std::optional<int64_t>, if_epoch);
ABSL_DECLARE_FLAG(std::optional<int64_t>, increment);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(bool, consistent);
ABSL_DECLARE_FLAG(std::vector<std::string>, labels);
ABSL_DECLARE_FLAG(absl::Duration, timeout);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, token);
ABSL_DECLARE_FLAG(int64_t, ahead);
ABSL_DECLARE_FLAG(int32_t, window);
ABSL_DECLARE_FLAG(bool, torch);
ABSL_DECLARE_FLAG(std::string, state);
ABSL_DECLARE_FLAG(std::string, torch_spec);
ABSL_DECLARE_FLAG(std::string, torch_state);
ABSL_DECLARE_FLAG(bool, replace);
ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(std::vector<std::string>, session);
ABSL_DECLARE_FLAG(std::string, title);
ABSL_DECLARE_FLAG(std::string, continue_with);
ABSL_DECLARE_FLAG(std::optional<double>, scale);
ABSL_DECLARE_FLAG(std::optional<int64_t>, at_epoch);
ABSL_DECLARE_FLAG(std::string, groups);
ABSL_DECLARE_FLAG(std::string, reason);
ABSL_DECLARE_FLAG(std::optional<int64_t>, if_revision);
ABSL_DECLARE_FLAG(bool, dry_run);
ABSL_DECLARE_FLAG(int64_t, from);
ABSL_DECLARE_FLAG(std::optional<int64_t>, to);

namespace lrsched::cli {

// The exit-code contract (also in `lrsched --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the server refused the request (any other code),
                                            // or simulate could not write its output
inline constexpr int kExitUsage = 2;        // bad usage or unreadable input
inline constexpr int kExitUnavailable = 3;  // server unreachable, UNAVAILABLE, deadline passed
inline constexpr int kExitNotFound = 4;     // no such session (NOT_FOUND)
inline constexpr int kExitNotServing = 5;   // health: the server answers NOT_SERVING

inline constexpr const char* kDefaultServer = "127.0.0.1:50051";

// argv with "--flag-name..." rewritten to "--flag_name..." (only the name; not after "--").
std::vector<std::string> NormalizeFlagArgs(int argc, char** argv);

// Reads a file ("-": stdin).
bool ReadAll(const std::string& path, std::string* out);

// Prints "lrsched: <message>" on stderr and returns `code`.
int Fail(const absl::Status& s, int code);
// A server call's failure: "lrsched: CODE_NAME: message", exit code by ExitCodeFor.
int Fail(const absl::Status& s);
int ExitCodeFor(const absl::Status& s);

// Connects with --server, --timeout, --token (or $LRSCHED_TOKEN) and the TLS flags.
absl::StatusOr<std::unique_ptr<Client>> ConnectFromFlags();

// The JSON in file `path` ("-": standard input), parsed with the engine's bounds;
// INVALID_ARGUMENT "cannot read PATH" or naming what does not parse.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);
// The {"optimizer", "scheduler"} part of a spec file (a golden line's other keys are dropped).
absl::StatusOr<std::string> SpecFromFile(const std::string& path);

// Per-group values as JSON lists: {"lr": [...], "momentum": [...], "weight_decay": [...] (the
// last two where present)}.
nlohmann::json GroupsJson(const google::protobuf::RepeatedPtrField<v1::GroupValues>& groups);

// A session as JSON: name, last_epoch, lr (per group), momentum (where the optimizer has it),
// weight_decay (where the schedule drives it),
// scheduler_type, deterministic, revision, labels, spec, create_time, update_time.
nlohmann::json SessionJson(const v1::Session& s);

// A Timestamp as RFC 3339 UTC text.
std::string TimeText(const google::protobuf::Timestamp& t);

// `--set KEY=VALUE` may be repeated (absl keeps only a flag's last value): TakeSetFlags removes
// every --set=KV / --set KV from `args` (before absl parses them) and keeps them, in order, for
// AmendRequestFromFlags.
void TakeSetFlags(std::vector<std::string>* args);

// The AmendSessionRequest the amend flags describe (--continue-with | --set | --scale, and
// --at-epoch, --groups, --reason, --if-revision, --dry-run, --window); INVALID_ARGUMENT naming
// the flag that is wrong.
absl::StatusOr<v1::AmendSessionRequest> AmendRequestFromFlags(const std::string& name);
// True when any of --continue-with, --set, --scale was given.
bool AmendFlagsGiven();
// An amendment as JSON: at_epoch, kind, args (parsed), reason, revision, time, caller, role,
// applied, jump.
nlohmann::json AmendmentJson(const v1::Amendment& a);

// Prints rows (a header row first, where there is one) as left-aligned columns separated by
// two spaces.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

// Subcommands; `args` are the positional arguments, args[0] the subcommand.
int RunCreate(const std::vector<std::string>& args);
int RunStep(const std::vector<std::string>& args);
int RunGet(const std::vector<std::string>& args);
int RunList(const std::vector<std::string>& args);
int RunDelete(const std::vector<std::string>& args);
// `simulate FILE --server=ADDR`: the local simulate's output, computed by a temporary session.
int RunRemoteSimulate(const std::string& path);
int RunLr(const std::vector<std::string>& args);
int RunWatch(const std::vector<std::string>& args);
int RunHealth(const std::vector<std::string>& args);
int RunExport(const std::vector<std::string>& args);
int RunImport(const std::vector<std::string>& args);
int RunPlot(const std::vector<std::string>& args);
int RunAmend(const std::vector<std::string>& args);
int RunHistory(const std::vector<std::string>& args);

}  // namespace lrsched::cli

#endif  // LRSCHED_CLIENT_CLI_H_
