// Copyright lrsched authors.
#include "server/store/sqlite/journal_format.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "server/store/crc32c.h"
#include "server/store/sqlite/journal.h"

namespace lrsched::sqlite_internal {

namespace {
constexpr size_t kSegmentDigits = 20;
constexpr std::string_view kSegmentSuffix = ".log";
}  // namespace

std::string JournalSegmentName(int64_t first_seq) {
  return absl::StrFormat("%020d%s", first_seq, kSegmentSuffix);
}

int64_t ParseJournalSegmentName(const std::string& file_name) {
  if (file_name.size() != kSegmentDigits + kSegmentSuffix.size() ||
      std::string_view(file_name).substr(kSegmentDigits) != kSegmentSuffix) {
    return -1;
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t seq = 0;
  for (size_t i = 0; i < kSegmentDigits; ++i) {
    char ch = file_name[i];
    // 20 digits can spell more than INT64_MAX: no segment of ours is named so.
    if (ch < '0' || ch > '9' || seq > (kMax - (ch - '0')) / 10) return -1;
    seq = seq * 10 + (ch - '0');
  }
  return seq;
}

void EncodeJournalRecord(int64_t seq, absl::Span<const JournalEntry> entries, std::string* out) {
  using journal_format::PutU32;
  using journal_format::PutU64;
  size_t payload = 4;
  for (const JournalEntry& e : entries) payload += 1 + 8 + 4 + e.name.size() + 4 + e.value.size();
  const size_t start = out->size();
  out->reserve(start + kJournalRecordHeaderBytes + payload);
  PutU32(0, out);  // the checksum, once the bytes it covers are there
  PutU32(static_cast<uint32_t>(payload), out);
  PutU64(static_cast<uint64_t>(seq), out);
  PutU32(static_cast<uint32_t>(entries.size()), out);
  for (const JournalEntry& e : entries) {
    out->push_back(static_cast<char>(e.kind));
    PutU64(static_cast<uint64_t>(e.revision), out);
    PutU32(static_cast<uint32_t>(e.name.size()), out);
    out->append(e.name);
    PutU32(static_cast<uint32_t>(e.value.size()), out);
    out->append(e.value);
  }
  uint32_t crc = crc32c::Value(std::string_view(*out).substr(start + 4));
  journal_format::StoreU32(crc, out->data() + start);
}

namespace journal_format {

std::string SegmentHeader(int64_t first_seq) {
  std::string h(kJournalSegmentMagic, 8);
  PutU64(static_cast<uint64_t>(first_seq), &h);
  return h;
}

absl::Status CheckEntries(absl::Span<const JournalEntry> entries) {
  if (entries.empty()) return absl::InvalidArgumentError("journal: a record needs an entry");
  if (entries.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("journal: ", entries.size(), " entries"));
  }
  uint64_t payload = 4;
  for (size_t i = 0; i < entries.size(); ++i) {
    const JournalEntry& e = entries[i];
    auto bad = [i](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("journal: entry ", i, ": ", what));
    };
    if (e.kind == JournalEntry::Kind::kPut) {
      if (e.revision < 1) return bad(absl::StrCat("put with revision ", e.revision, " (< 1)"));
    } else if (e.kind == JournalEntry::Kind::kDelete) {
      if (e.revision != 0) return bad(absl::StrCat("delete with revision ", e.revision));
      if (!e.value.empty()) return bad("delete with a value");
    } else {
      return bad(absl::StrCat("kind ", static_cast<int>(e.kind)));
    }
    payload += 1 + 8 + 4 + uint64_t{e.name.size()} + 4 + uint64_t{e.value.size()};
  }
  if (payload > kJournalMaxPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat("journal: a record of ", payload,
                                                   " bytes, more than the limit of ",
                                                   kJournalMaxPayloadBytes));
  }
  return absl::OkStatus();
}

absl::Status DecodePayload(std::string_view payload, std::vector<JournalEntry>* entries,
                           size_t* count) {
  const char* p = payload.data();
  const char* const end = p + payload.size();
  auto bad = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("payload byte ", p - payload.data(), ": ", what));
  };
  if (end - p < 4) return bad(absl::StrCat("a payload of ", payload.size(), " bytes has no count"));
  const uint32_t n = GetU32(p);
  p += 4;
  if (n == 0) return bad("a record of no entries");
  // Checked before anything is allocated, so that a damaged count cannot ask for gigabytes.
  if (n > static_cast<size_t>(end - p) / kMinEntryBytes) {
    return bad(absl::StrCat(n, " entries cannot fit in ", end - p, " bytes"));
  }
  if (entries->size() < n) entries->resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    JournalEntry& e = (*entries)[i];
    if (end - p < 1 + 8 + 4) return bad(absl::StrCat("entry ", i, " is cut short"));
    const uint8_t kind = static_cast<uint8_t>(*p);
    const auto revision = static_cast<int64_t>(GetU64(p + 1));
    const uint32_t name_len = GetU32(p + 9);
    p += 13;
    if (kind == static_cast<uint8_t>(JournalEntry::Kind::kPut)) {
      if (revision < 1) return bad(absl::StrCat("entry ", i, ": put with revision ", revision));
    } else if (kind == static_cast<uint8_t>(JournalEntry::Kind::kDelete)) {
      if (revision != 0) {
        return bad(absl::StrCat("entry ", i, ": delete with revision ", revision));
      }
    } else {
      return bad(absl::StrCat("entry ", i, ": kind ", kind, " (1 put, 2 delete)"));
    }
    if (name_len > static_cast<size_t>(end - p) || end - p - name_len < 4) {
      return bad(absl::StrCat("entry ", i, ": name of ", name_len, " bytes runs past the end"));
    }
    e.kind = static_cast<JournalEntry::Kind>(kind);
    e.revision = revision;
    e.name.assign(p, name_len);
    p += name_len;
    const uint32_t value_len = GetU32(p);
    p += 4;
    if (value_len > static_cast<size_t>(end - p)) {
      return bad(absl::StrCat("entry ", i, ": value of ", value_len, " bytes runs past the end"));
    }
    if (kind == static_cast<uint8_t>(JournalEntry::Kind::kDelete) && value_len != 0) {
      return bad(absl::StrCat("entry ", i, ": delete with a value"));
    }
    e.value.assign(p, value_len);
    p += value_len;
  }
  if (p != end) return bad(absl::StrCat(end - p, " bytes after the last entry"));
  *count = n;
  return absl::OkStatus();
}

}  // namespace journal_format
}  // namespace lrsched::sqlite_internal
