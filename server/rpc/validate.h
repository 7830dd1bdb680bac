// Copyright lrsched authors.
//
// Validation of request fields that arrive from the network, before anything else looks at
// them. Every function returns OK or INVALID_ARGUMENT whose message starts with the field's
// name ("name: ...", "labels[\"k\"]: ...", "spec_json: ..."), so a client can tell which field
// to fix. Nothing here knows gRPC; the service calls these on the decoded request.
#ifndef LRSCHED_SERVER_VALIDATE_H_
#define LRSCHED_SERVER_VALIDATE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/registry/session.h"  // Labels

namespace lrsched {

// Request limits. The engine adds its own (JSON depth, param groups, list lengths).
inline constexpr size_t kMaxNameLength = 128;
inline constexpr size_t kMaxLabels = 16;
inline constexpr size_t kMaxLabelKeyLength = 63;
inline constexpr size_t kMaxLabelValueBytes = 256;
inline constexpr size_t kMaxSpecJsonBytes = 64 * 1024;
inline constexpr int32_t kDefaultPageSize = 100;
inline constexpr int32_t kMaxPageSize = 1000;
inline constexpr int64_t kMaxAhead = 1'000'000;
inline constexpr int32_t kMaxWindow = 10'000;

// A session name: [A-Za-z0-9._/-], 1 to 128 characters, without "..". `field` names the
// request field in the message.
absl::Status ValidateName(std::string_view name, std::string_view field = "name");
// A prefix of names: the same characters, at most 128 of them, may be empty.
absl::Status ValidateNamePrefix(std::string_view prefix, std::string_view field);
// At most 16 labels; keys [A-Za-z0-9._/-]{1,63}; values at most 256 bytes.
absl::Status ValidateLabels(const Labels& labels, std::string_view field = "labels");
// Parses a spec (at most 64 KiB, nesting bounded by ParseJson) into a JSON object.
absl::StatusOr<nlohmann::json> ParseSpecJson(std::string_view text,
                                             std::string_view field = "spec_json");
// A finite double.
absl::Status ValidateFinite(double value, std::string_view field);

// Prefixes a status message with a field name ("spec_json: " + message), keeping the code.
absl::Status WithField(std::string_view field, const absl::Status& status);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_VALIDATE_H_
