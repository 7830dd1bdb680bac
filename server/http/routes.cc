// Copyright lrsched authors.
#include "server/http/routes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lrsched::http {
namespace {

struct VerbRoute {
  absl::string_view verb;  // after the last ':'; "" for /v1/sessions/{name} itself
  absl::string_view method;
  Rpc rpc;
};

// Every route on /v1/sessions/{name}[:verb].
constexpr VerbRoute kNamed[] = {
    {"", "GET", Rpc::kGetSession},         {"", "DELETE", Rpc::kDeleteSession},
    {"step", "POST", Rpc::kStep},          {"lr", "GET", Rpc::kGetLR},
    {"watch", "GET", Rpc::kWatch},         {"export", "GET", Rpc::kExportState},
    {"import", "POST", Rpc::kImportState}, {"amend", "POST", Rpc::kAmendSession},
    {"history", "GET", Rpc::kGetHistory},
};

// The route table's answer for a path that has the methods in `allow` ("GET, POST").
RouteMatch MethodNotAllowed(absl::string_view method, absl::string_view path, std::string allow) {
  RouteMatch m;
  m.status = 405;
  m.error = absl::StrCat("method ", method, " not allowed on ", path, " (allowed: ", allow, ")");
  m.allow = std::move(allow);
  return m;
}

RouteMatch Found(Rpc rpc, std::string name = "") {
  RouteMatch m;
  m.status = 200;
  m.rpc = rpc;
  m.name = std::move(name);
  return m;
}

}  // namespace

const char* RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kCreateSession:
      return "CreateSession";
    case Rpc::kListSessions:
      return "ListSessions";
    case Rpc::kGetSession:
      return "GetSession";
    case Rpc::kDeleteSession:
      return "DeleteSession";
    case Rpc::kStep:
      return "Step";
    case Rpc::kGetLR:
      return "GetLR";
    case Rpc::kWatch:
      return "Watch";
    case Rpc::kSimulate:
      return "Simulate";
    case Rpc::kExportState:
      return "ExportState";
    case Rpc::kImportState:
      return "ImportState";
    case Rpc::kAmendSession:
      return "AmendSession";
    case Rpc::kGetHistory:
      return "GetHistory";
  }
  return "?";
}

RouteMatch MatchRoute(absl::string_view method, absl::string_view path) {
  // HEAD is GET without a body, as HTTP defines it; httplib drops the body itself.
  if (method == "HEAD") method = "GET";
  if (path == "/v1:simulate") {
    if (method == "POST") return Found(Rpc::kSimulate);
    return MethodNotAllowed(method, path, "POST");
  }
  if (path == "/v1/sessions" || path == "/v1/sessions/") {
    if (method == "POST") return Found(Rpc::kCreateSession);
    if (method == "GET") return Found(Rpc::kListSessions);
    return MethodNotAllowed(method, path, "GET, POST");
  }
  constexpr absl::string_view kPrefix = "/v1/sessions/";
  RouteMatch none;
  none.error = absl::StrCat("no route for ", path,
                            " (routes: /v1/sessions, /v1/sessions/{name}[:verb], /v1:simulate)");
  if (!absl::StartsWith(path, kPrefix)) return none;
  absl::string_view rest = path.substr(kPrefix.size());
  absl::string_view verb;
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos) {
    verb = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  // A ':' with no verb after it is no route (not GetSession on the name before it).
  if (rest.empty() || (colon != absl::string_view::npos && verb.empty())) return none;
  std::string allow;
  for (const VerbRoute& r : kNamed) {
    if (r.verb != verb) continue;
    if (r.method == method) return Found(r.rpc, std::string(rest));
    absl::StrAppend(&allow, allow.empty() ? "" : ", ", r.method);
  }
  if (allow.empty()) {
    none.error = absl::StrCat("no route for ", path, ": unknown verb \":", verb,
                              "\" (verbs: step, lr, watch, export, import, amend, history)");
    return none;
  }
  return MethodNotAllowed(method, path, std::move(allow));
}

}  // namespace lrsched::http
