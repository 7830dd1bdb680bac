// Copyright lrsched authors.
//
// The JSON side of the gateway: a request message built from an HTTP request's body, query
// parameters and path, and a reply printed as JSON, all in protobuf's JSON mapping
// (google::protobuf::util). Every refusal is INVALID_ARGUMENT naming the offending field or
// parameter. Pure functions, no I/O.
#ifndef LRSCHED_SERVER_HTTP_TRANSCODE_H_
#define LRSCHED_SERVER_HTTP_TRANSCODE_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace lrsched::http {

// Parses `body` (JSON of `msg`'s type; empty counts as {}) into `msg`. Unknown fields and
// values of the wrong type are refused, naming the field.
absl::Status ParseJsonBody(absl::string_view body, google::protobuf::Message* msg);

// Sets `msg`'s fields from query parameters: `field=value` for a scalar field (by its proto
// or JSON name; a repeated one takes each occurrence), `map_field[KEY]=VALUE` for a map of
// strings. Message fields cannot be query parameters.
absl::Status ApplyQuery(const std::multimap<std::string, std::string>& params,
                        google::protobuf::Message* msg);

// Sets `msg`'s `name` field to the path's `name`; a name already set (by the body or the
// query) must be the same.
absl::Status SetPathName(const std::string& name, google::protobuf::Message* msg);

// `msg` as JSON: lowerCamelCase names, fields at their default printed too.
std::string PrintJson(const google::protobuf::Message& msg);

}  // namespace lrsched::http

#endif  // LRSCHED_SERVER_HTTP_TRANSCODE_H_
