// Copyright lrsched authors.
#include "server/ops/access_log.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "server/ops/log.h"

namespace lrsched {
namespace {

constexpr absl::string_view kService(kLrSchedulerService.data(), kLrSchedulerService.size());

}  // namespace

bool IsMutation(std::string_view method) {
  return method == "Step" || method == "CreateSession" || method == "DeleteSession" ||
         method == "ImportState" || method == "AmendSession";
}

void CallObserver::Finished(const FinishedCall& call) const {
  const absl::Duration latency = absl::Now() - call.start;
  if (metrics_ != nullptr) {
    const absl::string_view method(call.method.data(), call.method.size());
    metrics_->ObserveRpc(absl::StrCat(kService, "/", method), static_cast<int>(call.code), latency);
  }
  if (!IsMutation(call.method)) return;
  logging::Line line(logging::Level::kInfo, "access");
  line.Kv("method", call.method).Kv("session", call.session);
  const bool ok = call.code == absl::StatusCode::kOk;
  if (ok && call.epoch) line.Kv("epoch", *call.epoch);
  if (ok && call.advanced) line.Kv("advanced", *call.advanced);
  if (!call.http_peer.empty()) line.Kv("via", "http").Kv("peer", call.http_peer);
  line.Kv("code", StatusCodeName(static_cast<int>(call.code)))
      .Kv("ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(latency)));
}

}  // namespace lrsched
