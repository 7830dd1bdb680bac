// Copyright lrsched authors.
//
// How the HTTP/JSON gateway reports a gRPC status: the HTTP status grpc-gateway gives each gRPC
// code, and the JSON error body of the contract (proto/lrsched/v1/lrsched.proto):
//   {"code": 5, "status": "NOT_FOUND", "message": "session \"a\" not found"}
// Pure functions, no I/O.
#ifndef LRSCHED_SERVER_HTTP_HTTP_STATUS_H_
#define LRSCHED_SERVER_HTTP_HTTP_STATUS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace lrsched::http {

// The HTTP status of gRPC code `code` (a number 0..16; anything else is 500).
int HttpStatusOf(int code);

// The gRPC code an HTTP status without a gRPC call behind it stands for (the gateway's own
// refusals: 404 route, 405 method, 413 body too large), for the error body.
int CodeOfHttpStatus(int http_status);

// {"code": code, "status": "<CODE_NAME>", "message": message} (message JSON-escaped).
std::string ErrorBody(int code, absl::string_view message);

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view s);

}  // namespace lrsched::http

#endif  // LRSCHED_SERVER_HTTP_HTTP_STATUS_H_
