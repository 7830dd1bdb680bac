// Copyright lrsched authors.
//
// LrSchedulerService's answer to a request body that does not parse as the method's request
// message: INVALID_ARGUMENT "could not parse request ...", after the same authorization as any
// call, counted in the metrics and written to the access log like the method's other calls.
// grpc++ alone would answer UNIMPLEMENTED with no message and record nothing
// (parse_checked_handler.h).
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "grpc/support/log.h"
#include "server/rpc/convert.h"
#include "server/rpc/parse_checked_handler.h"
#include "server/rpc/service.h"

namespace lrsched {
namespace {

// The index grpc++'s generated code gives `method`: its position in the service's descriptor.
int MethodIndex(const char* method) {
  const google::protobuf::ServiceDescriptor* service =
      v1::StepRequest::descriptor()->file()->FindServiceByName("LrScheduler");
  const google::protobuf::MethodDescriptor* m =
      service == nullptr ? nullptr : service->FindMethodByName(method);
  // A method renamed in the proto but not here: fail at start-up, not on a hostile call.
  GPR_ASSERT(m != nullptr);
  return m->index();
}

}  // namespace

absl::Status LrSchedulerService::Unparsed(const grpc::ServerContextBase* ctx, const char* method,
                                          const std::string& type) const {
  absl::Status s = Authorize(ctx, method);
  if (!s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat("could not parse request: the body of this ",
                                                 method, " call is not a valid ", type));
}

template <class Request, class Response>
void LrSchedulerService::ParseChecked(const char* method, UnaryMethod<Request, Response> serve) {
  MarkMethodCallback(
      MethodIndex(method),
      new ParseCheckedUnaryHandler<Request, Response>(
          [this, serve](grpc::CallbackServerContext* ctx, const Request* req, Response* resp) {
            return (this->*serve)(ctx, req, resp);
          },
          [this, method](grpc::CallbackServerContext* ctx, const Request*, Response*) {
            grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
            FinishedCall call;  // no session name: there is no request to read it from
            call.method = method;
            call.start = absl::Now();
            Finish(reactor, call, Unparsed(ctx, method, Request::descriptor()->full_name()));
            return reactor;
          }));
}

void LrSchedulerService::ParseCheckAllMethods() {
  ParseChecked("CreateSession", &LrSchedulerService::CreateSession);
  ParseChecked("GetSession", &LrSchedulerService::GetSession);
  ParseChecked("ListSessions", &LrSchedulerService::ListSessions);
  ParseChecked("DeleteSession", &LrSchedulerService::DeleteSession);
  ParseChecked("Step", &LrSchedulerService::Step);
  ParseChecked("GetLR", &LrSchedulerService::GetLR);
  ParseChecked("Simulate", &LrSchedulerService::Simulate);
  ParseChecked("ExportState", &LrSchedulerService::ExportState);
  ParseChecked("ImportState", &LrSchedulerService::ImportState);
  ParseChecked("AmendSession", &LrSchedulerService::AmendSession);
  ParseChecked("GetHistory", &LrSchedulerService::GetHistory);
  // Watch streams are counted by the interceptor (access_log.h), which sees this status.
  using WatchHandler = ParseCheckedWriterHandler<v1::WatchRequest, v1::Session>;
  MarkMethodCallback(
      MethodIndex("Watch"),
      new WatchHandler([this](grpc::CallbackServerContext* ctx,
                              const v1::WatchRequest* req) { return Watch(ctx, req); },
                       [this](grpc::CallbackServerContext* ctx, const v1::WatchRequest*) {
                         absl::Status s =
                             Unparsed(ctx, "Watch", v1::WatchRequest::descriptor()->full_name());
                         return new FinishedWriteReactor<v1::Session>(ToGrpc(s));
                       }));
}

}  // namespace lrsched
