// Copyright lrsched authors.
//
// TorchCpuGenerator: torch 1.13's CPU generator (`torch.Generator()`), for timm's noise, which
// seeds a fresh generator with `noise_seed + t` at every noisy step and draws `torch.randn(1)` or
// `torch.rand(1)` from it. Reproduces, bit for bit:
// - at::mt19937 seeded by manual_seed(s): MT19937 over the low 32 bits of the 64-bit seed;
// - randn(1) (a float32 tensor of one element, CPU): at::normal_distribution<double> on
//   random64() = (first 32-bit draw << 32) | second, Box–Muller on two 53-bit uniforms, the
//   second value (r·sin θ) cached in the generator for the next randn, the result rounded to
//   float32 (`.item()` widens it back);
// - rand(1): the low 24 bits of one 32-bit draw times 2^-24, in float32.
// tests/scheduler/torch_random_test.cc checks it against torch itself.
//
// Invariants: no allocation (the state is a fixed array); seeding is lazy, since a noisy step
// draws a handful of numbers and the k-th 32-bit output of a fresh MT19937 reads only state
// words k, k+1 and k+397: initializing all 624 words and twisting them up front would be most
// of a step's cost.
#ifndef LRSCHED_SCHEDULER_INTERNAL_TORCH_RANDOM_H_
#define LRSCHED_SCHEDULER_INTERNAL_TORCH_RANDOM_H_

#include <cstdint>

namespace lrsched::scheduler_internal {

// The seeding of kSeedLanes generators at once, seeded s, s + 1, ..., s + kSeedLanes - 1 (low
// 32 bits): the words their first kSeedOutputs outputs read (0 .. kSeedOutputs, and 397 ..
// 396 + kSeedOutputs), word-major so that the serial chain of each seeding runs in SIMD lanes
// side by side. timm seeds noise_seed + t at every noisy step, so consecutive steps seed
// consecutive seeds: one call seeds the next kSeedLanes steps for about the cost of one.
inline constexpr int kSeedLanes = 64;
inline constexpr int kSeedOutputs = 16;  // 8 Box–Muller pairs: 8 randn draws or more
struct SeededLanes {
  uint32_t low[kSeedOutputs + 1][kSeedLanes];
  uint32_t high[kSeedOutputs][kSeedLanes];
};
void SeedLanes(uint32_t first_seed, SeededLanes* out);

class TorchCpuGenerator {
 public:
  // torch.Generator().manual_seed(seed); a negative Python seed is its two's complement.
  explicit TorchCpuGenerator(uint64_t seed);
  // The generator of `lanes`' lane `lane`, limited to its first kSeedOutputs outputs: past
  // them exhausted() turns true (and outputs are meaningless); the caller then starts again
  // with the seed.
  TorchCpuGenerator(const SeededLanes& lanes, int lane);
  bool exhausted() const { return exhausted_; }

  uint32_t Random();    // engine_(): the next tempered MT19937 output
  uint64_t Random64();  // CPUGeneratorImpl::random64()
  double Randn();       // torch.randn(1, generator=g).item()
  double Rand();        // torch.rand(1, generator=g).item()

 private:
  static constexpr int kN = 624;
  uint32_t mt_[kN];
  int initialized_ = 1;  // mt_[0, initialized_) hold the seeding's words (or newer ones)
  int pos_ = 0;          // the word the next output replaces
  int limit_ = kN;       // outputs available (kSeedOutputs for a generator of SeededLanes)
  bool exhausted_ = false;
  bool has_cached_normal_ = false;
  double cached_normal_ = 0.0;
};

}  // namespace lrsched::scheduler_internal

#endif  // LRSCHED_SCHEDULER_INTERNAL_TORCH_RANDOM_H_
