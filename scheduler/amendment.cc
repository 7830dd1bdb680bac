// Copyright lrsched authors.
//
// Amendments: the kinds' names, the shape of their arguments, reparameterize's merge of
// keyword arguments, and Schedule's public entry points (the work is in
// internal/amend_*.cc).
#include "scheduler/amendment.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/amend_state.h"
#include "scheduler/internal/fields.h"
#include "scheduler/schedule.h"

namespace lrsched {

using nlohmann::json;

std::string_view AmendmentKindName(Amendment::Kind kind) {
  switch (kind) {
    case Amendment::Kind::kContinueWith:
      return "continue_with";
    case Amendment::Kind::kReparameterize:
      return "reparameterize";
    case Amendment::Kind::kScale:
      return "scale";
  }
  return "unknown";
}

absl::StatusOr<Amendment::Kind> ParseAmendmentKind(std::string_view name) {
  for (Amendment::Kind k : {Amendment::Kind::kContinueWith, Amendment::Kind::kReparameterize,
                            Amendment::Kind::kScale}) {
    if (AmendmentKindName(k) == name) return k;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kind: expected continue_with, reparameterize or scale, got \"", std::string(name), "\""));
}

absl::StatusOr<AmendResult> Schedule::Amend(const Amendment& amendment) {
  return scheduler_internal::AmendEngine::Amend(*this, amendment);
}

int64_t Schedule::AmendCost(const Amendment& amendment) const {
  return scheduler_internal::AmendEngine::Cost(*this, amendment);
}

const std::vector<Amendment>& Schedule::amendments() const {
  static const std::vector<Amendment>* const kNone = new std::vector<Amendment>();
  return amend_ ? amend_->amendments : *kNone;
}

namespace scheduler_internal {

absl::Status CheckAmendmentArgs(const Amendment& a, size_t groups) {
  const std::string kind(AmendmentKindName(a.kind));
  if (a.at_epoch < 0 || a.at_epoch > kMaxInt) {
    return absl::InvalidArgumentError(
        absl::StrCat("at_epoch: expected an integer in [0, ", kMaxInt, "], got ", a.at_epoch));
  }
  if (!a.args.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(kind, ": expected an object of arguments"));
  }
  switch (a.kind) {
    case Amendment::Kind::kScale: {
      for (auto it = a.args.begin(); it != a.args.end(); ++it) {
        if (it.key() != "factor" && it.key() != "groups") {
          return absl::InvalidArgumentError(
              absl::StrCat("scale.", it.key(), ": unknown field (scale takes factor and groups)"));
        }
      }
      auto f = a.args.find("factor");
      if (f == a.args.end() || !f->is_number() || !std::isfinite(f->get<double>()) ||
          f->get<double>() <= 0) {
        const std::string got = f == a.args.end() ? "none"
                                : f->is_number()    ? FormatNumber(f->get<double>())
                                                    : f->dump();
        return absl::InvalidArgumentError(
            absl::StrCat("scale.factor: must be finite and > 0, got ", got));
      }
      auto g = a.args.find("groups");
      if (g != a.args.end() && !g->is_null()) {
        if (!g->is_array()) {
          return absl::InvalidArgumentError("scale.groups: expected a list of param group indices");
        }
        std::set<int64_t> seen;
        for (const json& i : *g) {
          if (!i.is_number_integer()) {
            return absl::InvalidArgumentError(
                absl::StrCat("scale.groups: expected param group indices, got ", i.dump()));
          }
          int64_t v = i.get<int64_t>();
          if (v < 0 || static_cast<size_t>(v) >= groups) {
            return absl::InvalidArgumentError(absl::StrCat(
                "scale.groups: ", v, " out of range (the optimizer has ", groups, " groups)"));
          }
          if (!seen.insert(v).second) {
            return absl::InvalidArgumentError(absl::StrCat("scale.groups: ", v, " given twice"));
          }
        }
      }
      return absl::OkStatus();
    }
    case Amendment::Kind::kContinueWith: {
      if (a.args.contains("scheduler")) {
        for (auto it = a.args.begin(); it != a.args.end(); ++it) {
          if (it.key() != "scheduler" && it.key() != "param_groups") {
            return absl::InvalidArgumentError(absl::StrCat(
                "continue_with.", it.key(),
                ": unknown field (with \"scheduler\", only \"param_groups\" may be given)"));
          }
        }
        if (!a.args["scheduler"].is_object()) {
          return absl::InvalidArgumentError("continue_with.scheduler: expected a scheduler spec");
        }
      } else if (!a.args.contains("type")) {
        return absl::InvalidArgumentError(
            "continue_with.type: required (a scheduler spec, or {\"scheduler\": spec, "
            "\"param_groups\": [...]})");
      }
      return absl::OkStatus();
    }
    case Amendment::Kind::kReparameterize:
      if (a.args.empty()) {
        return absl::InvalidArgumentError(
            "reparameterize: expected the keyword arguments to change, got none");
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("kind: unknown");
}

namespace {

absl::Status MergeInto(json& base, const json& patch, const std::string& path, int depth) {
  if (depth > kMaxNesting + 2) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": nested too deep"));
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& key = it.key();
    const std::string at = path.empty() ? key : absl::StrCat(path, ".", key);
    if (key == "type") {
      if (!base.contains("type") || base["type"] != *it) {
        return absl::FailedPreconditionError(absl::StrCat(
            "reparameterize: ", at, ": the scheduler's type cannot change mid-run (continue_with "
            "starts another scheduler)"));
      }
      continue;
    }
    if (depth == 0 && (key == "optimizer" || key == "param_groups")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "reparameterize: ", at, ": the optimizer and its param groups cannot change mid-run"));
    }
    if (it->is_null()) {
      base.erase(key);  // back to the argument's default
      continue;
    }
    auto b = base.find(key);
    if (key == "schedulers" && b != base.end() && b->is_array()) {
      if (!it->is_array() || it->size() != b->size()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "reparameterize: ", at, ": the number of schedulers cannot change mid-run (give a "
            "list of ", b->size(), " objects, {} for those unchanged)"));
      }
      for (size_t i = 0; i < it->size(); ++i) {
        const std::string ai = absl::StrCat(at, "[", i, "]");
        if (!(*it)[i].is_object()) {
          return absl::InvalidArgumentError(
              absl::StrCat("reparameterize: ", ai, ": expected an object of keyword arguments"));
        }
        absl::Status s = MergeInto((*b)[i], (*it)[i], ai, depth + 1);
        if (!s.ok()) return s;
      }
      continue;
    }
    if (b != base.end() && b->is_object() && it->is_object()) {
      absl::Status s = MergeInto(*b, *it, at, depth + 1);
      if (!s.ok()) return s;
      continue;
    }
    base[key] = *it;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<json> MergeKwargs(const json& spec, const json& kwargs, const std::string& path) {
  json out = spec;
  absl::Status s = MergeInto(out, kwargs, path, 0);
  if (!s.ok()) return s;
  return out;
}

}  // namespace scheduler_internal
}  // namespace lrsched
