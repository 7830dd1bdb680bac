// Copyright lrsched authors.
//
// The journal's byte-level format (internal to journal*.cc; journal.h describes it): the
// little-endian integers it is made of, the checks an Append makes on the entries it is given,
// and the decoding of one record's payload. Shared by the writer (journal.cc) and the reader
// (journal_scan.cc), so that both agree on every byte.
#ifndef LRSCHED_SERVER_SQLITE_JOURNAL_FORMAT_H_
#define LRSCHED_SERVER_SQLITE_JOURNAL_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "server/store/sqlite/journal.h"

namespace lrsched::sqlite_internal::journal_format {

// The smallest encoding of one entry: kind, revision, name length, value length (a name, like
// a Store key, may be empty).
inline constexpr size_t kMinEntryBytes = 1 + 8 + 4 + 4;

inline void PutU32(uint32_t v, std::string* out) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}

inline void PutU64(uint64_t v, std::string* out) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}

// Overwrites 4 bytes at `p` (a field reserved before its value was known).
inline void StoreU32(uint32_t v, char* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

// The compiler turns these into single loads on little-endian machines.
inline uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 | uint32_t{u[3]} << 24;
}

inline uint64_t GetU64(const char* p) {
  return uint64_t{GetU32(p)} | uint64_t{GetU32(p + 4)} << 32;
}

// The 16-byte header of the segment whose first record is `first_seq`.
std::string SegmentHeader(int64_t first_seq);

// INVALID_ARGUMENT unless `entries` is what a record may hold (journal.h JournalEntry): at
// least one; a put with revision >= 1; a delete with revision 0 and no value.
absl::Status CheckEntries(absl::Span<const JournalEntry> entries);

// Decodes one record's payload into (*entries)[0, *count), reusing the strings already there
// (the vector only grows). An error says what is wrong, relative to the payload's start; the
// caller adds the file and offset.
absl::Status DecodePayload(std::string_view payload, std::vector<JournalEntry>* entries,
                           size_t* count);

}  // namespace lrsched::sqlite_internal::journal_format

#endif  // LRSCHED_SERVER_SQLITE_JOURNAL_FORMAT_H_
