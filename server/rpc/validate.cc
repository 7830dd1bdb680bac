// Copyright lrsched authors.
#include "server/rpc/validate.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "scheduler/schedule.h"

namespace lrsched {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '/' || c == '-';
}

// The offending character, printable or as \xNN, for an error message.
std::string ShowChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u > ' ' && u < 0x7f) return std::string(1, c);
  return absl::StrFormat("\\x%02x", u);
}

absl::Status CheckCharset(std::string_view s, std::string_view field, size_t max_len) {
  if (s.empty()) return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": required"));
  if (s.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": ", s.size(), " characters, at most ", max_len));
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (!NameChar(s[i])) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": character '",
                                                     ShowChar(s[i]), "' at ", i,
                                                     " not allowed (only A-Z a-z 0-9 . _ / -)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateName(std::string_view name, std::string_view field) {
  absl::Status s = CheckCharset(name, field, kMaxNameLength);
  if (!s.ok()) return s;
  if (name.find("..") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": must not contain \"..\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateNamePrefix(std::string_view prefix, std::string_view field) {
  if (prefix.empty()) return absl::OkStatus();
  return CheckCharset(prefix, field, kMaxNameLength);
}

absl::Status ValidateLabels(const Labels& labels, std::string_view field) {
  if (labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": ", labels.size(), " labels, at most ", kMaxLabels));
  }
  for (const auto& [key, value] : labels) {
    absl::Status s =
        CheckCharset(key, absl::StrCat(std::string(field), " key"), kMaxLabelKeyLength);
    if (!s.ok()) return s;
    if (value.size() > kMaxLabelValueBytes) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(field), "[\"", key,
                                                     "\"]: ", value.size(), " bytes, at most ",
                                                     kMaxLabelValueBytes));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> ParseSpecJson(std::string_view text, std::string_view field) {
  if (text.empty())
    return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": required"));
  if (text.size() > kMaxSpecJsonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": ", text.size(), " bytes, at most ", kMaxSpecJsonBytes));
  }
  auto j = ParseJson(text, field);
  if (!j.ok()) return j.status();
  if (!j->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": expected a JSON object"));
  }
  return j;
}

absl::Status ValidateFinite(double value, std::string_view field) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(field), ": expected a finite number, got ",
                   std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf")));
}

absl::Status WithField(std::string_view field, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(std::string(field), ": ", std::string(status.message())));
}

}  // namespace lrsched
