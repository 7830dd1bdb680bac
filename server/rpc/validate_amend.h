// Copyright lrsched authors.
//
// Validation of AmendSession and GetHistory requests (validate.h's rules: every refusal is
// INVALID_ARGUMENT whose message starts with the field's name). What needs the session (a
// scale's group beyond its param groups, an at_epoch in its past, an argument its scheduler
// does not take) is decided later, by the registry and the engine.
#ifndef LRSCHED_SERVER_RPC_VALIDATE_AMEND_H_
#define LRSCHED_SERVER_RPC_VALIDATE_AMEND_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lrsched/v1/lrsched.pb.h"
#include "server/registry/registry.h"

namespace lrsched {

inline constexpr size_t kMaxReasonBytes = 1024;
inline constexpr int32_t kDefaultDryRunWindow = 100;
inline constexpr int32_t kMaxDryRunWindow = 10'000;
inline constexpr int32_t kDefaultHistoryPageSize = 1000;
inline constexpr int32_t kMaxHistoryPageSize = 100'000;

// The registry's AmendRequest from a request, every field checked (caller and role are the
// service's to fill).
absl::StatusOr<AmendRequest> ParseAmendRequest(const v1::AmendSessionRequest& req);

// GetHistory's query, the page token (an earlier reply's next_page_token) decoded.
absl::StatusOr<HistoryQuery> ParseHistoryRequest(const v1::GetHistoryRequest& req);
// The token of the page that starts at epoch `from`.
std::string HistoryPageToken(int64_t from);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_RPC_VALIDATE_AMEND_H_
