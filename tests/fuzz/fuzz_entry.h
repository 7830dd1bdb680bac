// Copyright lrsched authors.
//
// The fuzzing entry points, one per input kind, shared by the libFuzzer targets
// (fuzz_expr.cc, fuzz_spec.cc, fuzz_state.cc, fuzz_record.cc, fuzz_journal.cc) and by
// tests/fuzz_regression_test.cc, which replays the seed corpus and every saved crash through
// exactly the same code in a normal build.
//
// Each takes arbitrary bytes. Bad input must be refused with a status; anything else (a crash,
// a sanitizer report, an escaping exception, a broken invariant) aborts the process.
#ifndef LRSCHED_TESTS_FUZZ_FUZZ_ENTRY_H_
#define LRSCHED_TESTS_FUZZ_FUZZ_ENTRY_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

// A broken invariant: say which and abort, so libFuzzer saves the input as a crash.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace lrsched::fuzz {

// Expr::Compile of the bytes as source, then Eval at a spread of arguments (int64 extremes too).
void FuzzExpr(const uint8_t* data, size_t size);

// ParseJson + Schedule::Create, a few Steps, then Export/Import and StateDict/Restore round
// trips, which must succeed and continue bit-exactly.
void FuzzSpec(const uint8_t* data, size_t size);

// ParseJson + Schedule::ImportState of whatever it is, and Restore(spec, param_groups,
// state_dict) of its parts; what loads is stepped and exported.
void FuzzState(const uint8_t* data, size_t size);

// One stored session record (fuzz_record_entry.cc): the first byte chooses whether the rest is
// framed with a correct checksum or stored as it is; DecodeRecord, then Registry::Load of it
// beside two good records, refusing and quarantining. Needs server/'s registry, not gRPC.
void FuzzRecord(const uint8_t* data, size_t size);

// One SqliteStore journal segment (fuzz_journal_entry.cc): the first byte chooses whether a
// correct segment header is put before the rest and whether the records' checksums are
// corrected; ScanJournal of it, alone and followed by a newer segment. Needs only the
// journal's format and reader (server/store/sqlite/, no SQLite).
void FuzzJournal(const uint8_t* data, size_t size);

}  // namespace lrsched::fuzz

#endif  // LRSCHED_TESTS_FUZZ_FUZZ_ENTRY_H_
