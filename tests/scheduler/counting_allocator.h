// Copyright lrsched authors.
//
// A counting global allocator, for tests that prove a path does not allocate (Expr::Eval, a
// plain step, the record's steady state). It REPLACES the global operator new and delete: include
// it in exactly one source file of a test executable.
#ifndef LRSCHED_TESTS_COUNTING_ALLOCATOR_H_
#define LRSCHED_TESTS_COUNTING_ALLOCATOR_H_

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace lrsched::test_support {

inline std::atomic<bool> g_count_allocations{false};
inline std::atomic<int64_t> g_allocations{0};

// The allocations `fn` makes (on any thread, while it runs).
template <typename Fn>
int64_t AllocationsDuring(Fn&& fn) {
  g_allocations = 0;
  g_count_allocations = true;
  fn();
  g_count_allocations = false;
  return g_allocations.load();
}

}  // namespace lrsched::test_support

void* operator new(std::size_t size) {
  if (lrsched::test_support::g_count_allocations.load(std::memory_order_relaxed)) {
    lrsched::test_support::g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) std::abort();
  return p;
}
// The nothrow form too, which pairs with the deletes below, so that no block is allocated by the
// runtime's (or a sanitizer's) operator new and freed here: std::stable_sort's temporary buffer
// takes the nothrow form, and ASan reports such a pair as an alloc-dealloc mismatch.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (lrsched::test_support::g_count_allocations.load(std::memory_order_relaxed)) {
    lrsched::test_support::g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  return std::malloc(size == 0 ? 1 : size);
}
// GCC, seeing free() inside a replaced operator delete, takes it for a mismatched pair; here
// every new above is malloc, so free is its match.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop

#endif  // LRSCHED_TESTS_COUNTING_ALLOCATOR_H_
