// Copyright lrsched authors.
//
// TorchCpuGenerator against torch itself: /usr/bin/python3's torch (1.13) draws randn and rand
// from torch.Generator().manual_seed(s) for many seeds (and long runs, past the MT19937 lazy
// seeding's and first twist's boundaries); every value must be bit-identical. Without torch
// the live comparison is skipped; values torch 1.13 gave are also checked as constants.
#include "scheduler/internal/torch_random.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/internal/timm_common.h"

namespace lrsched::scheduler_internal {
namespace {

uint64_t Bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

TEST(TorchRandomTest, ValuesTorch113Gave) {
  // torch.Generator().manual_seed(s); torch.randn(1, generator=g).item() three times.
  struct Case {
    int64_t seed;
    double randn[3];
    double rand;
  };
  const Case cases[] = {
      {0, {1.5409960746765137, -0.293428897857666, -2.1787893772125244}, 0.49625658988952637},
      {1, {0.6613521575927734, 0.266924113035202, 0.06167725846171379}, 0.7576315999031067},
      {42, {0.33669036626815796, 0.12880940735340118, 0.23446236550807953}, 0.8822692632675171},
      {4294967301,
       {-0.4867807626724243, -0.6038215756416321, -0.5580962300300598},
       0.8302518725395203},
      {-1, {1.2197630405426025, -0.3929794728755951, 1.0230751037597656}, 0.9937993884086609},
  };
  for (const Case& c : cases) {
    TorchCpuGenerator g(static_cast<uint64_t>(c.seed));
    for (double want : c.randn) EXPECT_EQ(Bits(g.Randn()), Bits(want)) << "seed " << c.seed;
    TorchCpuGenerator u(static_cast<uint64_t>(c.seed));
    EXPECT_EQ(Bits(u.Rand()), Bits(c.rand)) << "seed " << c.seed;
  }
}

// Seeds and how many values of each kind to draw from one generator.
constexpr const char* kScript = R"PY(
import torch
def seeds():
    for s in range(0, 600): yield s, 4, 3
    for s in [2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 7, 2**63 - 1, -1, -5, -2**40]:
        yield s, 4, 3
    for s in [3, 99, 12345]: yield s, 450, 700
for s, n, m in seeds():
    g = torch.Generator(); g.manual_seed(s)
    a = [repr(torch.randn(1, generator=g).item()) for _ in range(n)]
    g = torch.Generator(); g.manual_seed(s)
    b = [repr(torch.rand(1, generator=g).item()) for _ in range(m)]
    print(s, n, m, *a, *b)
)PY";

TEST(TorchRandomTest, MatchesTorchOverManySeeds) {
  std::string cmd = "/usr/bin/python3 -c '" + std::string(kScript) + "' 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (rc != 0 || out.empty()) GTEST_SKIP() << "no torch for /usr/bin/python3";
  std::istringstream in(out);
  std::string line;
  int lines = 0, values = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    long long seed;
    int randn_count, rand_count;
    ASSERT_TRUE(ls >> seed >> randn_count >> rand_count) << line;
    TorchCpuGenerator g(static_cast<uint64_t>(seed));
    for (int i = 0; i < randn_count; ++i, ++values) {
      double want;
      ASSERT_TRUE(ls >> want);
      ASSERT_EQ(Bits(g.Randn()), Bits(want)) << "seed " << seed << " randn #" << i;
    }
    TorchCpuGenerator u(static_cast<uint64_t>(seed));
    for (int i = 0; i < rand_count; ++i, ++values) {
      double want;
      ASSERT_TRUE(ls >> want);
      ASSERT_EQ(Bits(u.Rand()), Bits(want)) << "seed " << seed << " rand #" << i;
    }
    ++lines;
  }
  EXPECT_EQ(lines, 612);
  EXPECT_GT(values, 7700);
}

// SeedLanes seeds kSeedLanes generators at once: each lane's outputs are those of a generator
// seeded alone with first + lane (low 32 bits, wrapping), up to kSeedOutputs; past them the
// lane says it is exhausted rather than give other numbers.
TEST(TorchRandomTest, SeededLanesAreTheSeparatelySeededGenerators) {
  for (uint32_t first : {0u, 42u, 1234567u, 0xfffffff8u}) {
    SeededLanes lanes;
    SeedLanes(first, &lanes);
    for (int j = 0; j < kSeedLanes; ++j) {
      TorchCpuGenerator lane(lanes, j);
      TorchCpuGenerator alone(static_cast<uint64_t>(static_cast<uint32_t>(first + j)));
      for (int k = 0; k < kSeedOutputs; ++k) {
        ASSERT_EQ(lane.Random(), alone.Random()) << "seed " << first + j << " output " << k;
      }
      EXPECT_FALSE(lane.exhausted());
      lane.Random();
      EXPECT_TRUE(lane.exhausted());
    }
    // randn through a lane: the same bits as alone, while the outputs last.
    TorchCpuGenerator lane(lanes, 3);
    TorchCpuGenerator alone(static_cast<uint64_t>(static_cast<uint32_t>(first + 3)));
    for (int k = 0; k < kSeedOutputs / 2; ++k) EXPECT_EQ(Bits(lane.Randn()), Bits(alone.Randn()));
  }
}

// timm's noise drawn kSeedLanes steps at a time (TimmNoise's batch) is, at every t and in any
// order of t, what a generator seeded seed + t alone draws: normal draws with a noise_pct small
// enough that many lanes run out of their seeded words (and are seeded again alone), uniform
// draws, and a negative seed.
TEST(TorchRandomTest, TimmNoiseBatchesDrawWhatOneGeneratorDraws) {
  struct Config {
    bool uniform;
    double pct;
    int64_t seed;
  };
  for (const Config& c : {Config{false, 0.67, 42}, Config{false, 0.05, 7}, Config{true, 0.3, 42},
                          Config{false, 0.5, -3}}) {
    TimmNoise noise;
    noise.uniform = c.uniform;
    noise.pct = c.pct;
    noise.seed = c.seed;
    auto alone = [&c](int64_t t) {
      TorchCpuGenerator g(static_cast<uint64_t>(c.seed + t));
      if (c.uniform) return 2 * (g.Rand() - 0.5) * c.pct;
      for (;;) {
        const double n = g.Randn();
        if (std::fabs(n) < c.pct) return n;
      }
    };
    std::vector<int64_t> ts;
    for (int64_t t = 0; t < 300; ++t) ts.push_back(t);              // forward, batch by batch
    for (int64_t t = 1000; t > 900; t -= 3) ts.push_back(t);        // backwards: a batch per t
    for (int64_t t : {5, 130, 131, 64, 63, 2000}) ts.push_back(t);  // jumps across batches
    for (int64_t t : ts) {
      double got;
      ASSERT_TRUE(noise.Draw(t, &got).ok()) << t;
      ASSERT_EQ(Bits(got), Bits(alone(t))) << "pct " << c.pct << " t " << t;
    }
  }
}

}  // namespace
}  // namespace lrsched::scheduler_internal
