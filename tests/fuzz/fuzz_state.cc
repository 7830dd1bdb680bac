// Copyright lrsched authors.
//
// libFuzzer target: Schedule::ImportState, and Restore(spec, param_groups, state_dict), of the
// input as JSON.
// Built by tests/fuzz/CMakeLists.txt (clang, LRSCHED_FUZZ=ON); run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lrsched::fuzz::FuzzState(data, size);
  return 0;
}
