// Copyright lrsched authors.
#include "server/registry/record_frame.h"

#include <algorithm>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/store/crc32c.h"

namespace lrsched {
namespace {

constexpr std::string_view kCrcKey = " crc32c=";
constexpr size_t kCrcAt = kRecordMagic.size() + 1 + kCrcKey.size();  // after "/2 crc32c="
static_assert(kCrcAt + 8 + 1 == kRecordHeaderBytes);

// Debian's Abseil has its own string_view type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

void BeginRecord(std::string* out) {
  out->append(kRecordMagic);
  out->push_back(static_cast<char>('0' + kRecordFormat));
  out->append(kCrcKey);
  out->append("00000000\n");
}

void SealRecord(std::string* out) {
  const uint32_t crc = crc32c::Value(std::string_view(*out).substr(kRecordHeaderBytes));
  out->replace(kCrcAt, 8, crc32c::Hex(crc));
}

absl::StatusOr<OpenedRecord> OpenRecord(std::string_view record) {
  if (!record.empty() && record.front() == '{') return OpenedRecord{record, 1};
  if (record.substr(0, kRecordMagic.size()) != kRecordMagic) {
    return absl::DataLossError(
        "record: neither a framed record (\"#lrsched-record/\" header) nor a format-1 JSON "
        "object");
  }
  // The format number: digits up to the space.
  size_t end = record.find_first_not_of("0123456789", kRecordMagic.size());
  int format = 0;
  if (end == std::string_view::npos || end == kRecordMagic.size() ||
      end > kRecordMagic.size() + 9 ||
      !absl::SimpleAtoi(Absl(record.substr(kRecordMagic.size(), end - kRecordMagic.size())),
                        &format)) {
    return absl::DataLossError("record: damaged header (no format number)");
  }
  if (format > kRecordFormat) {
    return absl::DataLossError(absl::StrCat("record: format ", format,
                                            " is newer than this build of lrsched reads (",
                                            kRecordFormat, "); upgrade lrsched"));
  }
  std::optional<uint32_t> stored;
  if (format != kRecordFormat || record.size() < kRecordHeaderBytes ||
      record.substr(kRecordMagic.size() + 1, kCrcKey.size()) != kCrcKey ||
      record[kRecordHeaderBytes - 1] != '\n' ||
      !(stored = crc32c::ParseHex(record.substr(kCrcAt, 8)))) {
    return absl::DataLossError(
        absl::StrCat("record: damaged header \"",
                     absl::CHexEscape(Absl(record.substr(0, kRecordHeaderBytes))), "\""));
  }
  std::string_view body = record.substr(kRecordHeaderBytes);
  const uint32_t actual = crc32c::Value(body);
  if (actual != *stored) {
    return absl::DataLossError(absl::StrFormat(
        "record: checksum mismatch (stored crc32c %08x, the %d bytes give %08x): the record is "
        "damaged",
        *stored, body.size(), actual));
  }
  return OpenedRecord{body, kRecordFormat};
}

}  // namespace lrsched
