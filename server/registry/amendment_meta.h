// Copyright lrsched authors.
//
// What the server records with each amendment, in the engine's opaque Amendment::meta (which
// the schedule keeps, exports and imports unchanged): the session revision that recorded it,
// when, why (the caller's free-text reason) and who (the caller's token name and role, when the
// server has tokens). Stored as {"revision": R, "time": "RFC 3339", "reason": "...",
// "caller": "...", "role": "..."}; reading is lenient (a missing or mistyped member reads as
// its zero value), because meta also arrives in imported states that we did not write.
#ifndef LRSCHED_SERVER_REGISTRY_AMENDMENT_META_H_
#define LRSCHED_SERVER_REGISTRY_AMENDMENT_META_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "scheduler/amendment.h"

namespace lrsched {

struct AmendmentRecord {
  int64_t revision = 0;
  absl::Time time = absl::UnixEpoch();
  std::string reason;
  std::string caller;  // empty without tokens (or a token without a name)
  std::string role;    // empty without tokens
};

nlohmann::json AmendmentMeta(const AmendmentRecord& record);
AmendmentRecord ReadAmendmentMeta(const nlohmann::json& meta);
// The session revision recorded in `a.meta` (0 if none).
int64_t RecordedRevision(const Amendment& a);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_REGISTRY_AMENDMENT_META_H_
