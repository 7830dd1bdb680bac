// Copyright lrsched authors.
//
// libFuzzer target: lrsched::ParseJson + Schedule::Create of the input as a spec, then Steps
// and state round trips.
// Built by tests/fuzz/CMakeLists.txt (clang, LRSCHED_FUZZ=ON); run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lrsched::fuzz::FuzzSpec(data, size);
  return 0;
}
