// Copyright lrsched authors.
//
// The registry's side of AmendSession and GetHistory (server/registry/amend.cc, history.cc):
// what the rpc layer asks for, validated, and what it gets back. Field-level validation is the
// rpc layer's (server/rpc/validate_amend.h); what needs the session is decided by the registry
// and the engine.
#ifndef LRSCHED_SERVER_REGISTRY_AMEND_REQUEST_H_
#define LRSCHED_SERVER_REGISTRY_AMEND_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "scheduler/amendment.h"
#include "server/registry/session.h"

namespace lrsched {

// One epoch's values of every param group (a lookahead's or a dry run's window).
struct EpochGroups {
  int64_t epoch = 0;
  std::vector<GroupValue> groups;
};

// AmendSession (server/registry/amend.cc): one amendment of a session's schedule.
struct AmendRequest {
  Amendment::Kind kind = Amendment::Kind::kScale;
  nlohmann::json args;              // as Amendment::args
  std::optional<int64_t> at_epoch;  // absent: the session's last_epoch
  std::string reason;
  std::string caller;  // the caller's token name and role (recorded; empty without tokens)
  std::string role;
  std::optional<int64_t> if_revision;  // ABORTED, naming the current revision, unless equal
  bool dry_run = false;                // change nothing; compute the two windows
  int32_t window = 100;                // dry run: epochs from at_epoch (> 0)
};
struct AmendOutcome {
  SessionSnapshot session;  // after the amendment (dry run: as it is)
  Amendment amendment;      // as recorded (meta: amendment_meta.h), applied and jump filled
  // Dry run: at_epoch and the window - 1 epochs after it, as they are and as amended.
  std::vector<EpochGroups> current;
  std::vector<EpochGroups> amended;
};

// GetHistory (server/registry/history.cc): epochs from..to (to absent: the session's
// last_epoch), at most `limit` (> 0) of them.
struct HistoryQuery {
  int64_t from = 0;
  std::optional<int64_t> to;
  int64_t limit = 1000;
};
struct HistoryPage {
  std::string spec_json;
  std::vector<Amendment> amendments;
  std::vector<ServedEpoch> epochs;
  int64_t first_epoch = 0;
  std::optional<int64_t> next_from;  // set when epochs after the page remain up to `to`
};

}  // namespace lrsched

#endif  // LRSCHED_SERVER_REGISTRY_AMEND_REQUEST_H_
