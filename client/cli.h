// Copyright lrsched authors.
//
// Shared pieces of the `lrsched` command-line client: its flags (defined in cli_main.cc), exit
// codes, and the subcommands implemented in cli_remote.cc and cli_simulate_remote.cc.
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
#include "client/rpc_client.h"
#include "lrsched/v1/lrsched.pb.h"
#include "nlohmann/json.hpp"

ABSL_DECLARE_FLAG(int64_t, steps);
ABSL_DECLARE_FLAG(std::optional<std::string>, server);
ABSL_DECLARE_FLAG(std::string, spec);
ABSL_DECLARE_FLAG(std::optional<double>, metric);
ABSL_DECLARE_FLAG(std::optional<double>, epoch);
ABSL_DECLARE_FLAG(std::optional<int64_t>, if_epoch);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(std::vector<std::string>, labels);
ABSL_DECLARE_FLAG(absl::Duration, timeout);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);

namespace lrsched::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the server refused or could not be reached
inline constexpr int kExitUsage = 2;   // bad usage or unreadable input

inline constexpr const char* kDefaultServer = "127.0.0.1:50051";

// argv with "--flag-name..." rewritten to "--flag_name..." (only the name; not after "--").
std::vector<std::string> NormalizeFlagArgs(int argc, char** argv);

// Reads a file ("-": stdin).
bool ReadAll(const std::string& path, std::string* out);

// Prints "lrsched: <message>" (with the status code for server errors) on stderr.
int Fail(const absl::Status& s, int code = kExitFailed);

// Connects with --server, --timeout and the TLS flags.
absl::StatusOr<std::unique_ptr<RpcClient>> ConnectFromFlags();

// A session as JSON: name, last_epoch, lr (per group), momentum (where the optimizer has it),
// scheduler_type, deterministic, revision, labels, spec, create_time, update_time.
nlohmann::json SessionJson(const v1::Session& s);

// Subcommands; `args` are the positional arguments, args[0] the subcommand.
int RunCreate(const std::vector<std::string>& args);
int RunStep(const std::vector<std::string>& args);
int RunGet(const std::vector<std::string>& args);
int RunList(const std::vector<std::string>& args);
int RunDelete(const std::vector<std::string>& args);
// `simulate FILE --server=ADDR`: the local simulate's output, computed by a temporary session.
int RunRemoteSimulate(const std::string& path);

}  // namespace lrsched::cli

#endif  // LRSCHED_CLIENT_CLI_H_
