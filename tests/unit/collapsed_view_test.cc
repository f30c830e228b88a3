// CollapsedView: every layer's view equals the naive per-sector model, and
// many threads reading random ranges through a one-table cache (constant
// eviction) all see the same bytes. L2Cache: bounded, shared, first wins.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "clonekit/collapsed_view.h"
#include "l2_cache.h"
#include "test_images.h"

namespace clonekit::testing {
namespace {

// The reference byte at `offset` of the disk seen at specs[0], walking the
// layers for it (qcow2.rst's definition of a backing chain).
uint8_t NaiveByte(const std::vector<TestImageSpec>& specs, size_t top, uint64_t offset) {
  for (size_t d = top; d < specs.size(); d++) {
    const TestImageSpec& s = specs[d];
    const uint64_t index = offset >> s.cluster_bits;
    for (const TestCluster& c : s.clusters) {
      if (c.index != index) continue;
      if (c.fill == Fill::kZero) return 0;
      const uint64_t i = offset & ((1ull << s.cluster_bits) - 1);
      return i % 97 == 0 ? static_cast<uint8_t>(c.byte + i / 97) : c.byte;
    }
    if (d + 1 == specs.size() || offset >= specs[d + 1].size) return 0;
  }
  return 0;
}

std::vector<TestImageSpec> Chain3() {
  std::vector<TestImageSpec> specs(3);
  specs[0] = {12, 3, 3 << 20, "l1", "qcow2", true, {{3, Fill::kData, 7}, {300, Fill::kCompressed, 9},
                                                      {500, Fill::kZero, 0}, {700, Fill::kData, 11}}};
  specs[1] = {16, 3, 2 << 20, "l2", "qcow2", false, {{0, Fill::kData, 21}, {7, Fill::kCompressed, 23},
                                                       {8, Fill::kZero, 0}, {20, Fill::kData, 25}}};
  specs[2] = {9, 2, 4 << 20, "", "", false, {{1, Fill::kData, 31}, {4000, Fill::kCompressed, 33},
                                              {8000, Fill::kData, 35}, {8191, Fill::kData, 37}}};
  return specs;
}

std::unique_ptr<Chain> Open(const std::vector<TestImageSpec>& specs, MemoryOpener& opener) {
  for (size_t d = 0; d < specs.size(); d++) opener.Add(d ? "l" + std::to_string(d) : "top", BuildQcow2(specs[d]));
  ChainOptions options;
  options.metadata_cache_bytes = 0;  // one table per layer: every miss evicts
  Result<std::unique_ptr<Chain>> chain = OpenChain("top", opener, options);
  EXPECT_TRUE(chain.ok()) << chain.status().message();
  return chain.ok() ? std::move(chain).value() : nullptr;
}

class CollapsedViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chain = Open(specs, opener);
    ASSERT_TRUE(chain);
  }
  std::vector<TestImageSpec> specs = Chain3();
  MemoryOpener opener;
  std::unique_ptr<Chain> chain;
};

TEST_F(CollapsedViewTest, EveryLayerMatchesTheNaiveModel) {
  for (uint32_t depth = 0; depth < chain->depth(); depth++) {
    CollapsedView view(*chain, depth);
    ASSERT_EQ(view.size(), specs[depth].size);
    std::vector<uint8_t> disk(view.size());
    ASSERT_TRUE(view.Read(0, disk.data(), disk.size()).ok());
    for (uint64_t off = 0; off < disk.size(); off++) {
      ASSERT_EQ(disk[off], NaiveByte(specs, depth, off)) << "depth " << depth << " offset " << off;
    }
  }
  EXPECT_EQ(LayerNames(*chain), (std::vector<std::string>{"top", "l1", "l2"}));
}

TEST_F(CollapsedViewTest, ParallelRandomReadsSeeTheSameBytes) {
  CollapsedView view(*chain, 0);
  std::vector<uint8_t> disk(view.size());
  ASSERT_TRUE(view.Read(0, disk.data(), disk.size()).ok());

  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> buf;
      for (int i = 0; i < 2000; i++) {
        const uint64_t off = rng() % view.size();
        const size_t len = 1 + rng() % std::min<uint64_t>(view.size() - off, 300000);
        buf.assign(len, 0xee);
        if (!view.Read(off, buf.data(), len).ok() || std::memcmp(buf.data(), disk.data() + off, len) != 0) {
          mismatches++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, 0);
}

TEST_F(CollapsedViewTest, RefusesReadsPastTheEnd) {
  CollapsedView view(*chain, 1);
  uint8_t b[2];
  EXPECT_TRUE(view.Read(view.size() - 1, b, 1).ok());
  Status st = view.Read(view.size() - 1, b, 2);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("past the end"), std::string::npos) << st.message();
}

TEST(L2Cache, StaysWithinItsCapacityAndSharesTables) {
  L2Cache cache(4);
  auto make = [](uint8_t v) {
    return L2Cache::Table(new uint8_t[8]{v, v, v, v, v, v, v, v}, std::default_delete<uint8_t[]>());
  };
  for (uint64_t k = 0; k < 100; k++) cache.Insert(k, make(static_cast<uint8_t>(k)));
  int cached = 0;
  for (uint64_t k = 0; k < 100; k++) cached += cache.Find(k) != nullptr;
  EXPECT_LE(cached, 4);
  EXPECT_GE(cached, 1);
  // The first insert of a key wins; later inserts get the cached table.
  auto first = cache.Insert(1000, make(1));
  auto second = cache.Insert(1000, make(2));
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(second.get()[0], 1);
}

}  // namespace
}  // namespace clonekit::testing
