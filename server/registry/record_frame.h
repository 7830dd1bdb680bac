// Copyright lrsched authors.
//
// The frame around every durable session record (format 2): one header line carrying the
// record format and a CRC32C of the body, then the body (session.h's JSON text):
//
//   #lrsched-record/2 crc32c=1f2e3d4c\n{"spec":...}
//
// Any flipped, cut or appended byte fails the checksum, so a damaged record is refused with
// DATA_LOSS instead of being decoded into a plausible but wrong state. Format 1, written by
// builds before the frame existed, is the bare JSON object; it is still read (and rewritten
// as format 2 at start-up, server/registry/migrate.cc). A random change cannot turn a format-2
// record into a readable format-1 one: the header would have to vanish whole.
//
// Invariant: OpenRecord(Seal(x)) returns x's body with format 2, for every body.
#ifndef LRSCHED_SERVER_RECORD_FRAME_H_
#define LRSCHED_SERVER_RECORD_FRAME_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace lrsched {

inline constexpr int kRecordFormat = 2;
// "#lrsched-record/2 crc32c=" + 8 hex digits + "\n".
inline constexpr std::string_view kRecordMagic = "#lrsched-record/";
inline constexpr size_t kRecordHeaderBytes = 34;

// Appends a header whose checksum is still blank; append the body after it, then Seal.
void BeginRecord(std::string* out);
// Writes the checksum of everything after the header that starts at out[0].
void SealRecord(std::string* out);

struct OpenedRecord {
  std::string_view body;  // the JSON text, inside the record passed in
  int format = kRecordFormat;
};
// Checks the header and the checksum. DATA_LOSS naming what is wrong: a damaged header, a
// checksum mismatch (with both values), a newer format than this build reads, or bytes that
// are neither format.
absl::StatusOr<OpenedRecord> OpenRecord(std::string_view record);

}  // namespace lrsched

#endif  // LRSCHED_SERVER_RECORD_FRAME_H_
