// Copyright lrsched authors.
//
// `lrsched`: the command-line client. Subcommands:
//   simulate FILE [--steps=N]   trace a torch-style spec locally (FILE "-" reads stdin)
// Exit codes: 0 success (a refused configuration is still a result: it is in the JSON),
// 2 unreadable input or bad usage.
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/trace_json.h"
#include "scheduler/schedule.h"
#include "scheduler/trace.h"

ABSL_FLAG(int64_t, steps, -1, "simulate: number of steps (overrides the file's \"steps\")");

namespace lrsched {
namespace {

constexpr int kExitUsage = 2;

bool ReadAll(const std::string& path, std::string* out) {
  if (path == "-") {
    out->assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return true;
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

int RunSimulate(const std::vector<char*>& args) {
  if (args.size() != 3) {
    std::cerr << "usage: lrsched simulate FILE [--steps=N]\n";
    return kExitUsage;
  }
  std::string text;
  if (!ReadAll(args[2], &text)) {
    std::cerr << "lrsched: cannot read " << args[2] << "\n";
    return kExitUsage;
  }
  auto in = ParseJson(text, args[2]);
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
    return 0;
  }
  Trace trace;
  absl::Status s = lrsched::Simulate(**schedule, input->steps, input->metrics, input->epochs,
                                     &trace);
  if (!s.ok()) {
    std::cerr << "lrsched: " << s.message() << "\n";
    return kExitUsage;
  }
  std::cout << TraceJson(trace, (*schedule)->StateDict()).dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace lrsched

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("lrsched simulate FILE [--steps=N]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() >= 2 && std::string(args[1]) == "simulate") return lrsched::RunSimulate(args);
  std::cerr << "usage: lrsched simulate FILE [--steps=N]\n";
  return lrsched::kExitUsage;
}
