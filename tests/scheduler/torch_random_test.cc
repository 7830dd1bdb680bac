// Copyright lrsched authors.
//
// TorchCpuGenerator against torch itself: /usr/bin/python3's torch (1.13) draws randn and rand
// from torch.Generator().manual_seed(s) for many seeds (and long runs, past the MT19937 lazy
// seeding's and first twist's boundaries); every value must be bit-identical. Without torch
// the live comparison is skipped; values torch 1.13 gave are also checked as constants.
#include "scheduler/internal/torch_random.h"

#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace lrsched::scheduler_internal
