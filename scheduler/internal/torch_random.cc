// Copyright lrsched authors.
#include "scheduler/internal/torch_random.h"

#include <algorithm>
#include <cmath>

namespace lrsched::scheduler_internal {

TorchCpuGenerator::TorchCpuGenerator(uint64_t seed) {
  mt_[0] = static_cast<uint32_t>(seed & 0xffffffffu);  // at::mt19937::init_with_uint32
}

uint32_t TorchCpuGenerator::Random() {
  const int k = pos_;
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
