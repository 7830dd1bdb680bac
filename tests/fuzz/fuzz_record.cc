// Copyright lrsched authors.
//
// libFuzzer target: one stored session record's bytes, decoded and loaded by the registry
// (fuzz_entry.h FuzzRecord). Built by tests/fuzz/CMakeLists.txt (clang, LRSCHED_FUZZ=ON); run
// by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lrsched::fuzz::FuzzRecord(data, size);
  return 0;
}
