// Copyright lrsched authors.
//
// Fields: reads one JSON object of a spec (a scheduler's keyword arguments, an optimizer, a
// param group) or of an imported state with validation, and names every problem by its path,
// e.g. "scheduler.schedulers[1].T_max: expected a positive integer, got 0". Internal: every
// reader of a spec or state in the engine uses it, so that all refusals read alike.
//
// The first problem is kept (sticky) and later reads return defaults, so a constructor reads all
// its fields and checks status() once. Keys that were never read are unknown keyword arguments
// (torch raises TypeError for those); Finish() reports the first of them. The keys passed to
// the readers are remembered, not copied: each must stay valid until Finish() (string literals,
// or keys of a JSON object that lives that long).
#ifndef LRSCHED_SCHEDULER_INTERNAL_FIELDS_H_
#define LRSCHED_SCHEDULER_INTERNAL_FIELDS_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace lrsched::scheduler_internal {

using json = nlohmann::json;

// Bounds for integers read from specs: large enough for any real schedule, small enough that
// every value (and sums of a few of them) stays exact in a double and in int64.
inline constexpr int64_t kMaxInt = 1'000'000'000'000'000;  // 1e15
inline constexpr size_t kMaxListLength = 4096;
// Bound for values restored from state, where any finite number a schedule produced is valid.
inline constexpr double kAnyFinite = 1.7976931348623157e308;

class Fields {
 public:
  // `obj` must outlive this object. A non-object `obj` is an error at `path`.
  Fields(const json& obj, std::string path);

  bool Has(const char* key) const;
  // Marks `key` as known without reading it (e.g. torch's `verbose`).
  void Ignore(const char* key);

  // A finite number; integers are accepted where torch takes a float.
  double Float(const char* key, std::optional<double> def, double min = -1e300, double max = 1e300);
  // An integral number within [min, max]; 10.0 is read as 10 (JSON writers differ on this).
  int64_t Int(const char* key, std::optional<int64_t> def, int64_t min = -kMaxInt,
              int64_t max = kMaxInt);
  bool Bool(const char* key, std::optional<bool> def);
  std::string Enum(const char* key, std::optional<std::string> def,
                   std::initializer_list<const char*> allowed);
  // A number, or a list with one number per param group (torch's `_format_param`).
  std::vector<double> FloatPerGroup(const char* key, std::optional<double> def, size_t groups,
                                    double min = -1e300, double max = 1e300);
  std::vector<int64_t> IntList(const char* key, int64_t min = -kMaxInt, int64_t max = kMaxInt);
  // For state_dict import: if `key` is present it must equal `want` (numbers compare by value),
  // since a state_dict may not change a schedule's configuration.
  void Expect(const char* key, const json& want);
  // The raw value (for nested objects); nullptr (and an error) if absent.
  const json* Raw(const char* key, bool required);

  std::string PathOf(const char* key) const { return path_ + "." + key; }
  const std::string& path() const { return path_; }

  void Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
  }
  void Fail(const std::string& key_path, const std::string& what);

  // Reports the first unknown key, then returns the sticky status.
  absl::Status Finish();
  const absl::Status& status() const { return status_; }

 private:
  const json* Get(const char* key);
  double NumberAt(const json& v, const std::string& path, double min, double max);

  const json& obj_;
  std::string path_;
  // Keys read or ignored. A flat list: an object has a few dozen keys at most, and specs and
  // state are read for every record loaded at start-up, where a std::set's node per key
  // was a fifth of the load time.
  std::vector<std::string_view> used_;
  absl::Status status_;
};

// Formats a double the way the messages show numbers (shortest round-trip form).
std::string FormatNumber(double v);

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_FIELDS_H_
