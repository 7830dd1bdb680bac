// Copyright lrsched authors.
#include "scheduler/internal/fields.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lrsched::scheduler_internal {

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return json(v).dump();
}

namespace {
std::string Describe(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}
}  // namespace

Fields::Fields(const json& obj, std::string path) : obj_(obj), path_(std::move(path)) {
  used_.reserve(32);
  if (!obj_.is_object()) Fail(path_, absl::StrCat("expected an object, got ", Describe(obj_)));
}

void Fields::Fail(const std::string& key_path, const std::string& what) {
  Fail(absl::InvalidArgumentError(absl::StrCat(key_path, ": ", what)));
}

bool Fields::Has(const char* key) const {
  return obj_.is_object() && obj_.contains(key) && !obj_.at(key).is_null();
}

void Fields::Ignore(const char* key) { used_.emplace_back(key); }

const json* Fields::Get(const char* key) {
  used_.emplace_back(key);
  if (!obj_.is_object()) return nullptr;
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

const json* Fields::Raw(const char* key, bool required) {
  const json* v = Get(key);
  if (v == nullptr && required) Fail(PathOf(key), "required");
  return v;
}

double Fields::NumberAt(const json& v, const std::string& path, double min, double max) {
  if (!v.is_number() || v.is_boolean()) {
    Fail(path, absl::StrCat("expected a number, got ", Describe(v)));
    return 0;
  }
  double d = v.get<double>();
  if (!std::isfinite(d)) {
    Fail(path, absl::StrCat("expected a finite number, got ", FormatNumber(d)));
    return 0;
  }
  if (d < min || d > max) {
    Fail(path, absl::StrCat("must be in [", FormatNumber(min), ", ", FormatNumber(max), "], got ",
                            FormatNumber(d)));
    return 0;
  }
  return d;
}

double Fields::Float(const char* key, std::optional<double> def, double min, double max) {
  const json* v = Get(key);
  if (v == nullptr) {
    if (!def) Fail(PathOf(key), "required");
    return def.value_or(0);
  }
  return NumberAt(*v, PathOf(key), min, max);
}

int64_t Fields::Int(const char* key, std::optional<int64_t> def, int64_t min, int64_t max) {
  const json* v = Get(key);
  if (v == nullptr) {
    if (!def) Fail(PathOf(key), "required");
    return def.value_or(0);
  }
  if (!v->is_number() || v->is_boolean()) {
    Fail(PathOf(key), absl::StrCat("expected an integer, got ", Describe(*v)));
    return def.value_or(0);
  }
  if (v->is_number_integer()) {
    // Compare in the JSON's own type so that huge values cannot wrap.
    bool fits =
        v->is_number_unsigned() ? v->get<uint64_t>() <= static_cast<uint64_t>(kMaxInt) : true;
    int64_t i = fits ? v->get<int64_t>() : max;
    if (!fits || i < min || i > max) {
      Fail(PathOf(key),
           absl::StrCat("must be an integer in [", min, ", ", max, "], got ", Describe(*v)));
      return def.value_or(0);
    }
    return i;
  }
  double d = v->get<double>();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(min) ||
      d > static_cast<double>(max)) {
    Fail(PathOf(key),
         absl::StrCat("must be an integer in [", min, ", ", max, "], got ", Describe(*v)));
    return def.value_or(0);
  }
  return static_cast<int64_t>(d);
}

bool Fields::Bool(const char* key, std::optional<bool> def) {
  const json* v = Get(key);
  if (v == nullptr) {
    if (!def) Fail(PathOf(key), "required");
    return def.value_or(false);
  }
  if (!v->is_boolean()) {
    Fail(PathOf(key), absl::StrCat("expected true or false, got ", Describe(*v)));
    return def.value_or(false);
  }
  return v->get<bool>();
}

std::string Fields::Enum(const char* key, std::optional<std::string> def,
                         std::initializer_list<const char*> allowed) {
  const json* v = Get(key);
  if (v == nullptr) {
    if (!def) Fail(PathOf(key), "required");
    return def.value_or("");
  }
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    for (const char* a : allowed) {
      if (s == a) return s;
    }
  }
  Fail(PathOf(key),
       absl::StrCat("expected one of ", absl::StrJoin(allowed, ", "), "; got ", Describe(*v)));
  return def.value_or("");
}

std::vector<double> Fields::FloatPerGroup(const char* key, std::optional<double> def, size_t groups,
                                          double min, double max) {
  const json* v = Get(key);
  if (v == nullptr) {
    if (!def) Fail(PathOf(key), "required");
    return std::vector<double>(groups, def.value_or(0));
  }
  if (!v->is_array()) return std::vector<double>(groups, NumberAt(*v, PathOf(key), min, max));
  if (v->size() != groups) {
    Fail(PathOf(key),
         absl::StrCat("expected ", groups, " values (one per param group), got ", v->size()));
    return std::vector<double>(groups, 0);
  }
  std::vector<double> out;
  out.reserve(groups);
  for (size_t i = 0; i < groups; ++i) {
    out.push_back(NumberAt((*v)[i], absl::StrCat(PathOf(key), "[", i, "]"), min, max));
  }
  return out;
}

std::vector<int64_t> Fields::IntList(const char* key, int64_t min, int64_t max) {
  const json* v = Get(key);
  std::vector<int64_t> out;
  if (v == nullptr) {
    Fail(PathOf(key), "required");
    return out;
  }
  if (!v->is_array()) {
    Fail(PathOf(key), absl::StrCat("expected a list of integers, got ", Describe(*v)));
    return out;
  }
  if (v->size() > kMaxListLength) {
    Fail(PathOf(key), absl::StrCat("at most ", kMaxListLength, " entries, got ", v->size()));
    return out;
  }
  for (size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    std::string p = absl::StrCat(PathOf(key), "[", i, "]");
    double d = NumberAt(e, p, static_cast<double>(min), static_cast<double>(max));
    if (d != std::floor(d)) Fail(p, absl::StrCat("expected an integer, got ", Describe(e)));
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

void Fields::Expect(const char* key, const json& want) {
  const json* v = Get(key);
  if (v != nullptr && *v != want) {
    Fail(PathOf(key),
         absl::StrCat("is ", Describe(*v), " but the schedule's spec says ", Describe(want)));
  }
}

absl::Status Fields::Finish() {
  if (status_.ok() && obj_.is_object()) {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (std::find(used_.begin(), used_.end(), std::string_view(it.key())) == used_.end()) {
        Fail(PathOf(it.key().c_str()), "unknown field");
        break;
      }
    }
  }
  return status_;
}

}  // namespace lrsched::scheduler_internal
