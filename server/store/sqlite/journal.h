// Copyright lrsched authors.
//
// The journal of SqliteStore (internal): DATA_DIR/journal/, where every acknowledged commit
// batch is appended, with one write(2), before its callers are answered. A background applier
// copies it into lrsched.db later (server/store/sqlite/journal_apply.cc), so a Step costs an
// append instead of a SQLite transaction on the reply path. The design of etcd's WAL and of
// LevelDB's log.
//
// Files. The journal is a sequence of segments, each a file named by the sequence number of its
// first record, zero-padded to 20 digits: "00000000000000000042.log". A segment is
//   header:  "LRSJRNL1" (8 bytes), first_seq (u64)                           16 bytes
//   records, back to back, each:
//     crc32c (u32) of every byte that follows it up to the record's end
//     length (u32) of the payload
//     seq    (u64), the record's sequence number
//     payload: count (u32), then `count` entries:
//       kind (u8: 1 put, 2 delete), revision (i64), name length (u32), name,
//       value length (u32), value
// (integers little-endian). One record is one commit batch; seq numbers are consecutive across
// segments: the first record of a segment is the one its name says, and each next one is +1.
//
// Reading (ScanJournal) tells a torn tail from damage. A crash in the middle of an append can
// leave, at the end of the LAST segment only: a partial header or record, a record running past
// the end of the file, a record whose checksum fails and that ends exactly at the end of the
// file, or zero bytes (a file extended but not written). That is the one unacknowledged
// write: it is dropped, and the scan reports it. Anything else wrong (a bad checksum with bytes
// after it, a bad record in an earlier segment, a seq out of order, a payload that does not
// parse, a bad segment header or name, a file in journal/ that is not a segment) is damage:
// DATA_LOSS (FAILED_PRECONDITION for a stray file), naming the file, the offset and what is
// wrong, and nothing is modified.
//
// Invariants: records are appended only at the end of the newest segment; a failed append
// leaves nothing of its record in the file (truncated back), or the writer refuses every later
// append (its file is then in an unknown state); a segment is deleted only when every record in
// it is applied (its successor's first seq - 1 <= the applied seq) and it is not the newest.
#ifndef LRSCHED_SERVER_SQLITE_JOURNAL_H_
#define LRSCHED_SERVER_SQLITE_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace lrsched::sqlite_internal {

inline constexpr char kJournalDirName[] = "journal";
inline constexpr char kJournalSegmentMagic[] = "LRSJRNL1";  // 8 bytes, no NUL on disk
inline constexpr size_t kJournalSegmentHeaderBytes = 16;
inline constexpr size_t kJournalRecordHeaderBytes = 16;
// A record whose length field is larger is damage (or a torn tail), never allocated.
inline constexpr uint32_t kJournalMaxPayloadBytes = 1u << 30;

// One mutation as journaled: its outcome (the revision was decided before the append), not the
// request, so that replaying it needs no compare-and-swap.
struct JournalEntry {
  enum class Kind : uint8_t { kPut = 1, kDelete = 2 };
  Kind kind = Kind::kPut;
  std::string name;      // may be empty, as a Store key may
  std::string value;     // kPut only (empty for kDelete)
  int64_t revision = 0;  // kPut: the key's new revision (>= 1); kDelete: 0
};

// The file name of the segment whose first record is `first_seq`, and back (nullopt-like: -1
// for a name that is not exactly 20 digits + ".log").
std::string JournalSegmentName(int64_t first_seq);
int64_t ParseJournalSegmentName(const std::string& file_name);

// Appends the encoding of one record (seq, entries) to `out`.
void EncodeJournalRecord(int64_t seq, absl::Span<const JournalEntry> entries, std::string* out);

// The newest segment, appended to by one thread at a time (the store's writer role), while the
// applier thread may call DeleteApplied and anyone the accessors.
class JournalWriter {
 public:
  struct Options {
    std::string dir;  // DATA_DIR/journal; created if missing
    // A segment that has reached this many bytes is closed before the next append, which
    // starts a new one.
    int64_t segment_bytes = int64_t{64} << 20;
    // fdatasync after each append (and the directory after creating a segment), before Append
    // returns: synchronous=FULL. Without, an appended record survives the process's death
    // (kill -9: it is in the kernel's page cache) but not the machine's.
    bool sync = true;
  };

  // Starts a new segment whose first record will be `next_seq` (>= 1). Segments already in the
  // directory are kept (and listed, for DeleteApplied): the caller has replayed them. A segment
  // file of that name already there (an empty segment left by an earlier start) is replaced.
  static absl::StatusOr<std::unique_ptr<JournalWriter>> Open(const Options& options,
                                                             int64_t next_seq);
  ~JournalWriter();  // closes the file (no sync: Close the store, which applies everything)
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Appends one record with seq = next_seq() and `entries` (non-empty) with one write(2)
  // (rotating first if the segment is full), then fdatasyncs if options.sync, and returns the
  // seq, which is then consumed. On failure returns UNAVAILABLE naming the file and the errno
  // ("No space left on device" for a full disk); the seq is not consumed, and the record's
  // bytes are truncated away. If that truncation (or an fdatasync) fails, the writer is broken:
  // this and every later Append return UNAVAILABLE saying so (restart the store, whose replay
  // then drops the torn tail).
  absl::StatusOr<int64_t> Append(absl::Span<const JournalEntry> entries);

  // Deletes every segment, except the newest, whose records all have seq <= applied_seq, and
  // syncs the directory. Returns the first error (the segment stays, to be retried next time).
  absl::Status DeleteApplied(int64_t applied_seq);

  int64_t next_seq() const;
  int64_t segments() const;        // files in the directory that belong to the journal
  int64_t bytes_appended() const;  // since Open, headers included
  int64_t syncs() const;           // fdatasyncs since Open

  // Tests: after `n` more successful write(2) calls, the next one fails with ENOSPC (< 0: never).
  void SetWriteLimitForTesting(int64_t n);

 private:
  struct Segment {
    int64_t first_seq;
    std::string path;
  };
  JournalWriter(Options options, int64_t next_seq);
  absl::Status StartSegment(int64_t first_seq);  // on the writer's thread
  absl::Status Write(const std::string& bytes);  // at offset_, truncating back on failure

  const Options options_;
  int fd_ = -1;          // the newest segment
  std::string path_;     // its path, for messages
  int64_t offset_ = 0;   // its size
  std::string buffer_;   // reused encoding buffer
  absl::Status broken_;  // non-OK: every Append fails with it
  int64_t write_limit_ = -1;

  absl::Mutex delete_mu_;  // one DeleteApplied at a time: segments go oldest first
  mutable absl::Mutex mu_;
  int64_t next_seq_ ABSL_GUARDED_BY(mu_);
  std::vector<Segment> segments_ ABSL_GUARDED_BY(mu_);  // oldest first; back() is the newest
  int64_t bytes_appended_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

// What ScanJournal found.
struct JournalScan {
  int64_t segments = 0;   // segment files read
  int64_t records = 0;    // valid records read (all of them, applied or not)
  int64_t bytes = 0;      // bytes of the valid records, headers included
  int64_t first_seq = 0;  // of the first valid record (0: none)
  int64_t last_seq = 0;   // of the last valid record (0: none)
  // A torn tail was dropped: the file and offset where it starts and how many bytes it has.
  bool torn_tail = false;
  std::string torn_file;
  int64_t torn_offset = 0;
  int64_t torn_bytes = 0;
};

// Reads every segment in `dir` (DATA_DIR/journal; a missing directory is an empty journal) in
// order, validating all of it, and calls `fn` for each record whose seq > `after_seq`, in seq
// order, with its entries (valid during the call only). A record with seq <= after_seq is
// already in the database: checked, not passed on. DATA_LOSS (naming the file and offset) for
// damage as described above, and for records missing: the first record after after_seq is not
// after_seq + 1 while records exist before it or the journal's first seq is > after_seq + 1.
// Stops at the first error `fn` returns and returns it. Never modifies anything.
absl::StatusOr<JournalScan> ScanJournal(
    const std::string& dir, int64_t after_seq,
    const std::function<absl::Status(int64_t seq, absl::Span<const JournalEntry> entries)>& fn);

}  // namespace lrsched::sqlite_internal

#endif  // LRSCHED_SERVER_SQLITE_JOURNAL_H_
