// Copyright lrsched authors.
#include "server/rpc/call_interceptor.h"

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "server/ops/access_log.h"  // kLrSchedulerService
#include "server/ops/access_log.h"

namespace lrsched {
namespace {

using Hook = grpc::experimental::InterceptionHookPoints;

constexpr absl::string_view kService(kLrSchedulerService.data(), kLrSchedulerService.size());

// Counts every call that is not a unary LrScheduler call: Watch streams (latency: the stream's
// lifetime), health checks, reflection.
class RpcObserver final : public grpc::experimental::Interceptor {
 public:
  RpcObserver(Metrics* metrics, const char* method)
      : metrics_(metrics), start_(absl::Now()), method_(method != nullptr ? method : "") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS) && !method_.empty()) {
      metrics_->ObserveRpc(absl::string_view(method_).substr(1),
                           static_cast<int>(m->GetSendStatus().error_code()), absl::Now() - start_);
    }
    m->Proceed();
  }

 private:
  Metrics* const metrics_;
  const absl::Time start_;
  const std::string method_;  // "/package.Service/Method"
};

}  // namespace

grpc::experimental::Interceptor* RpcObserverFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (metrics_ == nullptr) return nullptr;
  const char* method = info->method();
  absl::string_view m(method != nullptr ? method : "");
  const bool ours = m.size() > kService.size() + 2 && m[0] == '/' &&
                    m.substr(1, kService.size()) == kService && m[kService.size() + 1] == '/';
  if (ours && info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY) return nullptr;
  return new RpcObserver(metrics_, method);
}

}  // namespace lrsched
