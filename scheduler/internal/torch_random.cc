// Copyright lrsched authors.
#include "scheduler/internal/torch_random.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lrsched::scheduler_internal {

TorchCpuGenerator::TorchCpuGenerator(uint64_t seed) {
  mt_[0] = static_cast<uint32_t>(seed & 0xffffffffu);  // at::mt19937::init_with_uint32
}

// GCC/Clang vector extensions: 8 lanes per vector (one AVX2 register, two SSE2 ones), four
// vectors side by side: each word of a seeding needs the one before (multiply latency ~10
// cycles), so the lanes, not the instructions, are what make it fast. The same arithmetic as
// the scalar seeding below, lane by lane. Built for AVX2 where the CPU has it (it has vpmulld;
// SSE2 multiplies 32-bit lanes in several instructions), else for the baseline.
__attribute__((target_clones("avx2", "default"))) void SeedLanes(uint32_t first_seed,
                                                                 SeededLanes* out) {
  typedef uint32_t Lanes8 __attribute__((vector_size(32)));
  constexpr int kVectors = kSeedLanes / 8;
  static_assert(kSeedLanes % 8 == 0);
  Lanes8 x[kVectors];  // every index constant once unrolled: kept in registers
#pragma GCC unroll 16
  for (int v = 0; v < kVectors; ++v) {
    for (int j = 0; j < 8; ++j) x[v][j] = first_seed + static_cast<uint32_t>(8 * v + j);
  }
  auto next = [&x](uint32_t i) {
#pragma GCC unroll 16
    for (int v = 0; v < kVectors; ++v) x[v] = 1812433253u * (x[v] ^ (x[v] >> 30)) + i;
  };
  auto store = [&x](uint32_t* row) {
#pragma GCC unroll 16
    for (int v = 0; v < kVectors; ++v) std::memcpy(row + 8 * v, &x[v], sizeof x[v]);
  };
  store(out->low[0]);
  uint32_t i = 1;
  for (; i <= static_cast<uint32_t>(kSeedOutputs); ++i) {
    next(i);
    store(out->low[i]);
  }
  for (; i < 397; ++i) next(i);
  for (; i < 397 + static_cast<uint32_t>(kSeedOutputs); ++i) {
    next(i);
    store(out->high[i - 397]);
  }
}

TorchCpuGenerator::TorchCpuGenerator(const SeededLanes& lanes, int lane)
    : initialized_(kN), limit_(kSeedOutputs) {
  for (int i = 0; i <= kSeedOutputs; ++i) mt_[i] = lanes.low[i][lane];
  for (int i = 0; i < kSeedOutputs; ++i) mt_[397 + i] = lanes.high[i][lane];
}

uint32_t TorchCpuGenerator::Random() {
  const int k = pos_;
  if (k >= limit_) {
    exhausted_ = true;
    return 0;
  }
  // The twist of word k reads words k+1 and k+397 as the seeding left them (until they are
  // themselves replaced): seed just that far.
  const int need = std::min(kN, k + 398);
  for (; initialized_ < need; ++initialized_) {
    const uint32_t prev = mt_[initialized_ - 1];
    mt_[initialized_] = 1812433253u * (prev ^ (prev >> 30)) + static_cast<uint32_t>(initialized_);
  }
  // The batch twist of MT19937 done one word at a time, in the same order, so the same words.
  const uint32_t y = (mt_[k] & 0x80000000u) | (mt_[(k + 1) % kN] & 0x7fffffffu);
  mt_[k] = mt_[(k + 397) % kN] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
  pos_ = (k + 1) % kN;
  uint32_t out = mt_[k];
  out ^= out >> 11;
  out ^= (out << 7) & 0x9d2c5680u;
  out ^= (out << 15) & 0xefc60000u;
  out ^= out >> 18;
  return out;
}

uint64_t TorchCpuGenerator::Random64() {
  const uint32_t hi = Random();
  const uint32_t lo = Random();
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

double TorchCpuGenerator::Randn() {
  double normal;
  if (has_cached_normal_) {
    has_cached_normal_ = false;
    normal = cached_normal_;
  } else {
    // at::uniform_real_distribution<double>(0, 1): 53 random bits, then x * (to - from) + from.
    constexpr uint64_t kMask = (uint64_t{1} << 53) - 1;
    constexpr double kDivisor = 1.0 / static_cast<double>(uint64_t{1} << 53);
    const double u1 = static_cast<double>(Random64() & kMask) * kDivisor * (1.0 - 0.0) + 0.0;
    const double u2 = static_cast<double>(Random64() & kMask) * kDivisor * (1.0 - 0.0) + 0.0;
    const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
    const double theta = 2.0 * 3.14159265358979323846 * u1;
    cached_normal_ = r * std::sin(theta);
    has_cached_normal_ = true;
    normal = r * std::cos(theta);
  }
  // transformation::normal(x, mean 0, std 1), then the float32 tensor's element.
  return static_cast<double>(static_cast<float>(normal * 1.0 + 0.0));
}

double TorchCpuGenerator::Rand() {
  // at::uniform_real_distribution<float>(0, 1) on one 32-bit draw, in float arithmetic.
  constexpr uint32_t kMask = (uint32_t{1} << 24) - 1;
  constexpr float kDivisor = 1.0f / static_cast<float>(uint32_t{1} << 24);
  const float x = static_cast<float>(Random() & kMask) * kDivisor;
  return static_cast<double>(x * (1.0f - 0.0f) + 0.0f);
}

}  // namespace lrsched::scheduler_internal
