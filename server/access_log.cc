// Copyright lrsched authors.
#include "server/access_log.h"

#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "lrsched/v1/lrsched.pb.h"
#include "server/log.h"

namespace lrsched {
namespace {

using Hook = grpc::experimental::InterceptionHookPoints;

constexpr std::string_view kServicePrefix = "/lrsched.v1.LrScheduler/";

enum class Mutation { kNone, kCreate, kDelete, kStep, kImport };

Mutation MutationOf(std::string_view short_method) {
  if (short_method == "CreateSession") return Mutation::kCreate;
  if (short_method == "DeleteSession") return Mutation::kDelete;
  if (short_method == "Step") return Mutation::kStep;
  if (short_method == "ImportState") return Mutation::kImport;
  return Mutation::kNone;
}

class RpcObserver final : public grpc::experimental::Interceptor {
 public:
  RpcObserver(Metrics* metrics, const char* method)
      : metrics_(metrics), start_(absl::Now()), method_(method != nullptr ? method : "") {
    std::string_view m(method_);
    if (m.substr(0, kServicePrefix.size()) == kServicePrefix) {
      short_method_ = m.substr(kServicePrefix.size());
      mutation_ = MutationOf(short_method_);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (mutation_ != Mutation::kNone) {
      if (m->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE)) ReadRequest(m->GetRecvMessage());
      if (m->QueryInterceptionHookPoint(Hook::PRE_SEND_MESSAGE)) ReadResponse(m->GetSendMessage());
    }
    if (m->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) Finish(m->GetSendStatus());
    m->Proceed();
  }

 private:
  // The messages are the generated types of the method (gRPC hands them over untyped).
  void ReadRequest(const void* msg) {
    if (msg == nullptr) return;
    switch (mutation_) {
      case Mutation::kCreate:
        session_ = static_cast<const v1::CreateSessionRequest*>(msg)->name();
        break;
      case Mutation::kDelete:
        session_ = static_cast<const v1::DeleteSessionRequest*>(msg)->name();
        break;
      case Mutation::kStep:
        session_ = static_cast<const v1::StepRequest*>(msg)->name();
        break;
      case Mutation::kImport:
        session_ = static_cast<const v1::ImportStateRequest*>(msg)->name();
        break;
      case Mutation::kNone:
        break;
    }
  }

  void ReadResponse(const void* msg) {
    if (msg == nullptr) return;
    if (mutation_ == Mutation::kStep) {
      const auto* r = static_cast<const v1::StepResponse*>(msg);
      epoch_ = r->session().last_epoch();
      advanced_ = r->advanced();
    } else if (mutation_ == Mutation::kCreate || mutation_ == Mutation::kImport) {
      epoch_ = static_cast<const v1::Session*>(msg)->last_epoch();
    }
  }

  void Finish(const grpc::Status& status) {
    absl::Duration latency = absl::Now() - start_;
    if (metrics_ != nullptr && !method_.empty()) {
      metrics_->ObserveRpc(absl::string_view(method_).substr(1), status.error_code(), latency);
    }
    if (mutation_ == Mutation::kNone) return;
    log::Line line(log::Level::kInfo, "access");
    line.Kv("method", short_method_).Kv("session", session_);
    if (status.ok() && epoch_) line.Kv("epoch", *epoch_);
    if (status.ok() && advanced_) line.Kv("advanced", *advanced_);
    line.Kv("code", CodeText(status.error_code()))
        .Kv("ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(latency)));
  }

  static const char* CodeText(grpc::StatusCode code) {
    static const char* const kNames[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    int c = static_cast<int>(code);
    return c >= 0 && c <= 16 ? kNames[c] : "UNKNOWN";
  }

  Metrics* const metrics_;
  const absl::Time start_;
  const std::string method_;
  std::string_view short_method_;  // within method_
  Mutation mutation_ = Mutation::kNone;
  std::string session_;
  std::optional<int64_t> epoch_;
  std::optional<bool> advanced_;
};

}  // namespace

grpc::experimental::Interceptor* RpcObserverFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcObserver(metrics_, info->method());
}

}  // namespace lrsched
