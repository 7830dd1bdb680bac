// Copyright lrsched authors.
//
// libFuzzer target: Expr::Compile + Eval (scheduler/internal/expr.h) of the input as an
// lr_lambda/scale_fn source.
// Built by tests/fuzz/CMakeLists.txt (clang, LRSCHED_FUZZ=ON); run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lrsched::fuzz::FuzzExpr(data, size);
  return 0;
}
