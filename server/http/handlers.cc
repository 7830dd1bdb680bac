// Copyright lrsched authors.
#include "server/http/handlers.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/http/http_status.h"
#include "server/http/transcode.h"

namespace lrsched::http {
namespace {

using Stub = v1::LrScheduler::Stub;

// What gRPC metadata may carry (printable ASCII): anything else would fail the call later
// with a less helpful message.
bool MetadataSafe(const std::string& v) {
  for (unsigned char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

absl::Status PrepareContext(const httplib::Request& req, grpc::ClientContext* ctx) {
  if (req.has_header("Authorization")) {
    std::string auth = req.get_header_value("Authorization");
    if (!MetadataSafe(auth)) {
      return absl::InvalidArgumentError("Authorization: not printable ASCII");
    }
    ctx->AddMetadata("authorization", auth);
  }
  if (MetadataSafe(req.remote_addr)) ctx->AddMetadata("x-forwarded-for", req.remote_addr);
  ctx->AddMetadata("x-lrsched-transport", "http");
  return absl::OkStatus();
}

void WriteError(httplib::Response& res, int code, const std::string& message) {
  res.status = HttpStatusOf(code);
  res.set_content(ErrorBody(code, message), "application/json");
}

RouteHandlers::RouteHandlers(std::shared_ptr<grpc::ChannelInterface> channel, int max_watch_streams,
                             size_t max_body_bytes)
    : stub_(v1::LrScheduler::NewStub(std::move(channel))),
      max_watch_streams_(max_watch_streams),
      max_body_bytes_(max_body_bytes) {}

template <class Req, class Resp>
void RouteHandlers::Unary(const httplib::Request& req, httplib::Response& res,
                          const RouteMatch& route, bool has_body, StubMethod<Req, Resp> method) {
  Req request;
  absl::Status s = has_body ? ParseJsonBody(req.body, &request) : absl::OkStatus();
  // A body carries the whole request (google.api.http's body: "*"), so no query parameters:
  // httplib would also have put a form-encoded body among them.
  if (s.ok() && !has_body) s = ApplyQuery(req.params, &request);
  if (s.ok() && !route.name.empty()) s = SetPathName(route.name, &request);
  grpc::ClientContext ctx;
  if (s.ok()) s = PrepareContext(req, &ctx);
  if (!s.ok()) return WriteError(res, static_cast<int>(s.code()), std::string(s.message()));
  Resp reply;
  grpc::Status st = (stub_.get()->*method)(&ctx, request, &reply);
  if (!st.ok()) return WriteError(res, st.error_code(), st.error_message());
  res.status = 200;
  res.set_content(PrintJson(reply), "application/json");
}

void RouteHandlers::Handle(const httplib::Request& req, httplib::Response& res) {
  RouteMatch route = MatchRoute(req.method, req.path);
  if (route.status == 405) res.set_header("Allow", route.allow);
  if (route.status != 200) {
    res.status = route.status;
    res.set_content(ErrorBody(CodeOfHttpStatus(route.status), route.error), "application/json");
    return;
  }
  switch (route.rpc) {
    case Rpc::kCreateSession:
      return Unary(req, res, route, true, &Stub::CreateSession);
    case Rpc::kListSessions:
      return Unary(req, res, route, false, &Stub::ListSessions);
    case Rpc::kGetSession:
      return Unary(req, res, route, false, &Stub::GetSession);
    case Rpc::kDeleteSession:
      return Unary(req, res, route, false, &Stub::DeleteSession);
    case Rpc::kStep:
      return Unary(req, res, route, true, &Stub::Step);
    case Rpc::kGetLR:
      return Unary(req, res, route, false, &Stub::GetLR);
    case Rpc::kWatch:
      return Watch(req, res, route);
    case Rpc::kSimulate:
      return Unary(req, res, route, true, &Stub::Simulate);
    case Rpc::kExportState:
      return Unary(req, res, route, false, &Stub::ExportState);
    case Rpc::kImportState:
      return Unary(req, res, route, true, &Stub::ImportState);
    case Rpc::kAmendSession:
      return Unary(req, res, route, true, &Stub::AmendSession);
    case Rpc::kGetHistory:
      return Unary(req, res, route, false, &Stub::GetHistory);
  }
}

void RouteHandlers::FillError(const httplib::Request& req, httplib::Response& res) {
  if (!res.body.empty()) return;  // ours, already JSON
  std::string message;
  switch (res.status) {
    case 404:
      message = absl::StrCat("no route for ", req.path);
      break;
    case 413:
      message =
          absl::StrCat("request body too large: at most ", max_body_bytes_, " bytes, as over gRPC");
      break;
    default:
      message = res.status == 400
                    ? "malformed HTTP request (a POST needs a Content-Length: send a body, "
                      "{} at least)"
                    : absl::StrCat("HTTP status ", res.status);
  }
  res.set_content(ErrorBody(CodeOfHttpStatus(res.status), message), "application/json");
}

}  // namespace lrsched::http
