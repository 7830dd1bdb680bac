// Copyright lrsched authors.
//
// Method handlers that answer a request which does not parse with the service's own refusal.
//
// grpc++'s callback handlers (1.51, server_callback_handlers.h) answer a request body that does
// not parse as the method's request message with UNIMPLEMENTED and an empty message, before any
// of the service's code runs: the caller is misled and the call is in neither the metrics nor
// the access log. ParseCheckedUnaryHandler / ParseCheckedWriterHandler wrap grpc++'s own
// handler and change only that case: they hand the failed call to a second reactor getter,
// `refuse`, which answers it (INVALID_ARGUMENT) and records it like any other call.
//
// The parse itself is grpc++'s (same arena-allocated messages, same deserialization); a parsed
// call costs one more virtual call and a branch on the status.
//
// Invariant: `refuse` is called exactly for the calls whose request did not parse, and never
// reads the request (for the streaming handler it is null).
#ifndef LRSCHED_SERVER_PARSE_CHECKED_HANDLER_H_
#define LRSCHED_SERVER_PARSE_CHECKED_HANDLER_H_

#include <functional>
#include <utility>

#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "grpcpp/support/status.h"

namespace lrsched {

// `Inner` is grpc++'s handler for the method's kind; both wrapped handlers are built from the
// same kind of reactor getter (Inner's constructor argument).
template <class Inner>
class ParseCheckedHandler final : public grpc::internal::MethodHandler {
 public:
  template <class Serve, class Refuse>
  ParseCheckedHandler(Serve serve, Refuse refuse)
      : serve_(std::move(serve)), refuse_(std::move(refuse)) {}

  void* Deserialize(grpc_call* call, grpc_byte_buffer* req, grpc::Status* status,
                    void** handler_data) override {
    return serve_.Deserialize(call, req, status, handler_data);
  }

  void RunHandler(const HandlerParameter& param) override {
    if (param.status.ok()) {
      serve_.RunHandler(param);
      return;
    }
    // The messages Deserialize allocated (param.internal_data) are the same type for both
    // handlers; `refuse` runs as a parsed call would, so it can finish the call itself.
    refuse_.RunHandler(HandlerParameter(param.call, param.server_context, param.request,
                                        grpc::Status::OK, param.internal_data,
                                        param.call_requester));
  }

 private:
  Inner serve_;
  Inner refuse_;
};

template <class Request, class Response>
using ParseCheckedUnaryHandler =
    ParseCheckedHandler<grpc::internal::CallbackUnaryHandler<Request, Response>>;
template <class Request, class Response>
using ParseCheckedWriterHandler =
    ParseCheckedHandler<grpc::internal::CallbackServerStreamingHandler<Request, Response>>;

// A server-streaming reactor that only finishes its call with `status`, then deletes itself.
template <class Response>
class FinishedWriteReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit FinishedWriteReactor(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_PARSE_CHECKED_HANDLER_H_
