// Copyright lrsched authors.
//
// The HTTP/JSON gateway's route table (the contract in proto/lrsched/v1/lrsched.proto): which
// LrScheduler method an HTTP method and path call, and the session name the path carries.
//
//   POST /v1/sessions, GET /v1/sessions, GET|DELETE /v1/sessions/{name},
//   POST|GET /v1/sessions/{name}:VERB, POST /v1:simulate
//
// `{name}` may contain '/' but never ':', so the verb is what follows the last ':'. The path
// given is already percent-decoded (cpp-httplib decodes it). Pure functions, no I/O.
#ifndef LRSCHED_SERVER_HTTP_ROUTES_H_
#define LRSCHED_SERVER_HTTP_ROUTES_H_

#include <string>

#include "absl/strings/string_view.h"

namespace lrsched::http {

enum class Rpc {
  kCreateSession,
  kListSessions,
  kGetSession,
  kDeleteSession,
  kStep,
  kGetLR,
  kWatch,
  kSimulate,
  kExportState,
  kImportState,
  kAmendSession,
  kGetHistory,
};

// The method's gRPC name: "GetLR".
const char* RpcName(Rpc rpc);

struct RouteMatch {
  // 200: `rpc` (and `name`) are set; 404: no such path; 405: the path exists, not with this
  // method (`allow` lists the methods it has, for the Allow header).
  int status = 404;
  Rpc rpc = Rpc::kGetSession;
  std::string name;  // the session name in the path ("" for the routes without one)
  std::string allow;
  std::string error;  // why, for 404 and 405
};

// `method` is the HTTP method ("GET"), `path` the decoded path without the query string.
RouteMatch MatchRoute(absl::string_view method, absl::string_view path);

}  // namespace lrsched::http

#endif  // LRSCHED_SERVER_HTTP_ROUTES_H_
