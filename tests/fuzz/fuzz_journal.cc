// Copyright lrsched authors.
//
// libFuzzer target: one journal segment file's bytes, read by ScanJournal (fuzz_entry.h
// FuzzJournal). Built by tests/fuzz/CMakeLists.txt (clang, LRSCHED_FUZZ=ON); run by
// scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lrsched::fuzz::FuzzJournal(data, size);
  return 0;
}
