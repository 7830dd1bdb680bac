// Copyright lrsched authors.
#include "server/rpc/validate_amend.h"

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/rpc/validate.h"

namespace lrsched {
namespace {

constexpr char kTokenPrefix[] = "history:";

absl::Status Invalid(std::string_view field, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": ", std::string(why)));
}

absl::Status ParseScale(const v1::Scale& scale, nlohmann::json* args) {
  const double f = scale.factor();
  if (absl::Status s = ValidateFinite(f, "scale.factor"); !s.ok()) return s;
  if (f <= 0) {
    return Invalid("scale.factor", absl::StrCat("must be greater than 0, got ", f));
  }
  (*args)["factor"] = f;
  std::set<int32_t> seen;
  nlohmann::json groups = nlohmann::json::array();
  for (int i = 0; i < scale.groups_size(); ++i) {
    const int32_t g = scale.groups(i);
    const std::string field = absl::StrCat("scale.groups[", i, "]");
    if (g < 0) return Invalid(field, absl::StrCat("a param group index, got ", g));
    if (!seen.insert(g).second) return Invalid(field, absl::StrCat("group ", g, " listed twice"));
    groups.push_back(g);
  }
  if (!groups.empty()) (*args)["groups"] = std::move(groups);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AmendRequest> ParseAmendRequest(const v1::AmendSessionRequest& req) {
  AmendRequest out;
  if (absl::Status s = ValidateName(req.name()); !s.ok()) return s;
  switch (req.kind_case()) {
    case v1::AmendSessionRequest::kContinueWithJson: {
      auto spec = ParseSpecJson(req.continue_with_json(), "continue_with_json");
      if (!spec.ok()) return spec.status();
      out.kind = Amendment::Kind::kContinueWith;
      out.args = *std::move(spec);
      break;
    }
    case v1::AmendSessionRequest::kReparameterizeJson: {
      auto args = ParseSpecJson(req.reparameterize_json(), "reparameterize_json");
      if (!args.ok()) return args.status();
      if (args->empty()) return Invalid("reparameterize_json", "no argument to change");
      out.kind = Amendment::Kind::kReparameterize;
      out.args = *std::move(args);
      break;
    }
    case v1::AmendSessionRequest::kScale: {
      out.kind = Amendment::Kind::kScale;
      out.args = nlohmann::json::object();
      if (absl::Status s = ParseScale(req.scale(), &out.args); !s.ok()) return s;
      break;
    }
    default:
      return Invalid("kind", "one of continue_with_json, reparameterize_json or scale is required");
  }
  if (req.has_at_epoch()) {
    if (req.at_epoch() < 0) {
      return Invalid("at_epoch", absl::StrCat("must not be negative, got ", req.at_epoch()));
    }
    out.at_epoch = req.at_epoch();
  }
  if (req.reason().size() > kMaxReasonBytes) {
    return Invalid("reason",
                   absl::StrCat(req.reason().size(), " bytes, at most ", kMaxReasonBytes));
  }
  out.reason = req.reason();
  if (req.has_if_revision()) out.if_revision = req.if_revision();
  if (req.dry_run_window() < 0 || req.dry_run_window() > kMaxDryRunWindow) {
    return Invalid("dry_run_window", absl::StrCat("expected 0 to ", kMaxDryRunWindow, ", got ",
                                                  req.dry_run_window()));
  }
  out.dry_run = req.dry_run();
  out.window = req.dry_run_window() == 0 ? kDefaultDryRunWindow : req.dry_run_window();
  return out;
}

std::string HistoryPageToken(int64_t from) {
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenPrefix, from));
}

absl::StatusOr<HistoryQuery> ParseHistoryRequest(const v1::GetHistoryRequest& req) {
  HistoryQuery q;
  if (absl::Status s = ValidateName(req.name()); !s.ok()) return s;
  if (req.page_size() < 0 || req.page_size() > kMaxHistoryPageSize) {
    return Invalid("page_size",
                   absl::StrCat("expected 0 to ", kMaxHistoryPageSize, ", got ", req.page_size()));
  }
  q.limit = req.page_size() == 0 ? kDefaultHistoryPageSize : req.page_size();
  q.from = req.from_epoch();
  if (req.has_to_epoch()) {
    if (req.to_epoch() < req.from_epoch()) {
      return Invalid("to_epoch",
                     absl::StrCat(req.to_epoch(), " is before from_epoch ", req.from_epoch()));
    }
    q.to = req.to_epoch();
  }
  if (!req.page_token().empty()) {
    std::string text;
    int64_t from = 0;
    absl::string_view rest;
    if (!absl::WebSafeBase64Unescape(req.page_token(), &text) ||
        !absl::ConsumePrefix(&(rest = text), kTokenPrefix) || !absl::SimpleAtoi(rest, &from) ||
        from <= req.from_epoch() || (q.to && from > *q.to + 1)) {
      return Invalid("page_token",
                     "not a token from GetHistory with this request's from_epoch and to_epoch");
    }
    q.from = from;
  }
  return q;
}

}  // namespace lrsched
