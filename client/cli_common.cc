// Copyright lrsched authors.
//
// Helpers shared by the `lrsched` subcommands: argument normalization, input files, errors,
// the connection, and the JSON shape of a session.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "scheduler/schedule.h"

namespace lrsched::cli {

std::vector<std::string> NormalizeFlagArgs(int argc, char** argv) {
  std::vector<std::string> out;
  bool flags_done = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && !flags_done) {
      if (a == "--") {
        flags_done = true;
      } else if (a.size() > 1 && a[0] == '-') {
        // "-x..." or "--x...": rewrite dashes inside the name, up to '='. Not "-1e-3" (a
        // negative number given as a separate value).
        size_t start = a[1] == '-' ? 2 : 1;
        if (start >= a.size() || !std::isalpha(static_cast<unsigned char>(a[start]))) {
          out.push_back(std::move(a));
          continue;
        }
        size_t end = a.find('=');
        if (end == std::string::npos) end = a.size();
        for (size_t k = start; k < end; ++k) {
          if (a[k] == '-') a[k] = '_';
        }
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

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

int Fail(const absl::Status& s, int code) {
  std::cerr << "lrsched: " << s.message() << "\n";
  return code;
}

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    default:
      return kExitFailed;
  }
}

int Fail(const absl::Status& s) {
  std::cerr << "lrsched: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
  return ExitCodeFor(s);
}

absl::StatusOr<std::unique_ptr<Client>> ConnectFromFlags() {
  ClientOptions o;
  o.server = absl::GetFlag(FLAGS_server).value_or(kDefaultServer);
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.ca_file = absl::GetFlag(FLAGS_tls_ca);
  o.cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.key_file = absl::GetFlag(FLAGS_tls_key);
  o.token = absl::GetFlag(FLAGS_token);
  if (o.token.empty()) {
    const char* env = std::getenv("LRSCHED_TOKEN");
    if (env != nullptr) o.token = env;
  }
  // A command-line call should fail fast when the server is down: two quick retries only.
  o.max_attempts = 3;
  if (o.cert_file.empty() != o.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (!o.cert_file.empty() && o.ca_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert needs --tls_ca (the server's CA)");
  }
  return Client::Connect(o);
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::string text;
  if (!ReadAll(path, &text)) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  return ParseJson(text, path);
}

absl::StatusOr<std::string> SpecFromFile(const std::string& path) {
  auto in = ReadJsonFile(path);
  if (!in.ok()) return in.status();
  if (!in->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a JSON object"));
  }
  nlohmann::json spec = nlohmann::json::object();
  for (const char* k : {"optimizer", "scheduler"}) {
    if (!in->contains(k)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", k, ": required"));
    }
    spec[k] = (*in)[k];
  }
  return spec.dump();
}

nlohmann::json GroupsJson(const google::protobuf::RepeatedPtrField<v1::GroupValues>& groups) {
  nlohmann::json j;
  nlohmann::json lr = nlohmann::json::array();
  nlohmann::json momentum = nlohmann::json::array();
  nlohmann::json weight_decay = nlohmann::json::array();
  bool has_momentum = false, has_weight_decay = false;
  for (const v1::GroupValues& g : groups) {
    lr.push_back(g.lr());
    if (g.has_momentum()) {
      has_momentum = true;
      momentum.push_back(g.momentum());
    }
    if (g.has_weight_decay()) {
      has_weight_decay = true;
      weight_decay.push_back(g.weight_decay());
    }
  }
  j["lr"] = lr;
  if (has_momentum) j["momentum"] = momentum;
  if (has_weight_decay) j["weight_decay"] = weight_decay;
  return j;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string TimeText(const google::protobuf::Timestamp& t) {
  absl::Time at = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", at, absl::UTCTimeZone());
}

nlohmann::json SessionJson(const v1::Session& s) {
  nlohmann::json j;
  j["name"] = s.name();
  j["last_epoch"] = s.last_epoch();
  nlohmann::json values = GroupsJson(s.groups());
  j["lr"] = values["lr"];
  if (values.contains("momentum")) j["momentum"] = values["momentum"];
  if (values.contains("weight_decay")) j["weight_decay"] = values["weight_decay"];
  j["scheduler_type"] = s.scheduler_type();
  j["deterministic"] = s.deterministic();
  j["revision"] = s.revision();
  j["schedule_revision"] = s.schedule_revision();
  j["labels"] = nlohmann::json::object();
  for (const auto& [k, v] : s.labels()) j["labels"][k] = v;
  nlohmann::json spec = nlohmann::json::parse(s.spec_json(), nullptr, /*allow_exceptions=*/false);
  j["spec"] = spec.is_discarded() ? nlohmann::json(s.spec_json()) : spec;
  j["create_time"] = TimeText(s.create_time());
  j["update_time"] = TimeText(s.update_time());
  return j;
}

}  // namespace lrsched::cli
