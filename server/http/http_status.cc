// Copyright lrsched authors.
#include "server/http/http_status.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/ops/metrics.h"

namespace lrsched::http {

int HttpStatusOf(int code) {
  // grpc-gateway's runtime.HTTPStatusFromCode.
  switch (code) {
    case 0:  // OK
      return 200;
    case 1:  // CANCELLED: nginx's "client closed request"
      return 499;
    case 3:   // INVALID_ARGUMENT
    case 9:   // FAILED_PRECONDITION
    case 11:  // OUT_OF_RANGE
      return 400;
    case 4:  // DEADLINE_EXCEEDED
      return 504;
    case 5:  // NOT_FOUND
      return 404;
    case 6:   // ALREADY_EXISTS
    case 10:  // ABORTED
      return 409;
    case 7:  // PERMISSION_DENIED
      return 403;
    case 8:  // RESOURCE_EXHAUSTED
      return 429;
    case 12:  // UNIMPLEMENTED
      return 501;
    case 14:  // UNAVAILABLE
      return 503;
    case 16:  // UNAUTHENTICATED
      return 401;
    default:  // UNKNOWN, INTERNAL, DATA_LOSS, anything else
      return 500;
  }
}

int CodeOfHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return 3;  // INVALID_ARGUMENT
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 5;  // NOT_FOUND
    case 405:
      return 12;  // UNIMPLEMENTED: grpc-gateway's answer to a method a path does not have
    case 409:
      return 6;
    case 413:
    case 429:
      return 8;  // RESOURCE_EXHAUSTED, like gRPC's own refusal of a too-large message
    case 499:
      return 1;
    case 501:
      return 12;
    case 503:
      return 14;
    case 504:
      return 4;
    default:
      return http_status >= 500 ? 13 : 3;  // INTERNAL, else INVALID_ARGUMENT
  }
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string ErrorBody(int code, absl::string_view message) {
  return absl::StrCat("{\"code\":", code, ",\"status\":\"", StatusCodeName(code),
                      "\",\"message\":", JsonQuote(message), "}");
}

}  // namespace lrsched::http
