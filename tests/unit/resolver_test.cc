// ChainResolver against a naive model that walks the chain for every
// 512-byte sector (the definition of the collapsed view, qcow2.rst), and a
// check that resolving reads each layer's metadata at most once.
#include <gtest/gtest.h>

#include <atomic>
#include <random>

#include "clonekit/chain_resolver.h"
#include "extent_reader.h"
#include "test_images.h"

namespace clonekit::testing {
namespace {

struct Expect {
  uint32_t depth;
  RunKind kind;
  uint8_t byte;  // pattern of the providing cluster (data/compressed)
};

// The reference: for sector s, the first layer that has it decides.
Expect Naive(const std::vector<TestImageSpec>& specs, uint64_t offset) {
  for (uint32_t d = 0; d < specs.size(); d++) {
    const TestImageSpec& s = specs[d];
    uint64_t index = offset >> s.cluster_bits;
    for (const TestCluster& c : s.clusters) {
      if (c.index != index) continue;
      if (c.fill == Fill::kZero) return {d, RunKind::kZero, 0};
      return {d, c.fill == Fill::kData ? RunKind::kData : RunKind::kCompressed, c.byte};
    }
    bool last = d + 1 == specs.size();
    if (last || offset >= specs[d + 1].size) return {d, RunKind::kUnallocated, 0};
  }
  return {0, RunKind::kUnallocated, 0};
}

uint8_t PatternByte(const TestImageSpec& spec, uint8_t byte, uint64_t offset) {
  uint64_t i = offset & ((1ull << spec.cluster_bits) - 1);
  return i % 97 == 0 ? static_cast<uint8_t>(byte + i / 97) : byte;
}

std::vector<TestImageSpec> RandomChain(std::mt19937& rng, size_t depth) {
  std::vector<TestImageSpec> specs(depth);
  for (size_t d = 0; d < depth; d++) {
    TestImageSpec& s = specs[d];
    s.cluster_bits = 9 + rng() % 8;  // 512 B .. 64 KiB
    s.version = rng() % 3 == 0 ? 2 : 3;
    s.zstd = s.version == 3 && rng() % 2;
    s.size = (1 + rng() % 8) * 65536 + (rng() % 2) * 512 * (rng() % 100);
    if (d + 1 < depth) s.backing = "layer" + std::to_string(d + 1);
    uint64_t clusters = (s.size + (1ull << s.cluster_bits) - 1) >> s.cluster_bits;
    std::vector<bool> used(clusters);
    size_t count = rng() % (clusters / 3 + 2);
    for (size_t i = 0; i < count; i++) {
      uint64_t index = rng() % clusters;
      if (used[index]) continue;
      used[index] = true;
      Fill fill = static_cast<Fill>(rng() % 3);
      if (fill == Fill::kZero && s.version == 2) fill = Fill::kData;
      s.clusters.push_back({index, fill, static_cast<uint8_t>(1 + rng() % 250)});
    }
  }
  return specs;
}

std::unique_ptr<Chain> OpenSpecs(const std::vector<TestImageSpec>& specs, MemoryOpener& opener) {
  for (size_t d = 0; d < specs.size(); d++) opener.Add("layer" + std::to_string(d), BuildQcow2(specs[d]));
  Result<std::unique_ptr<Chain>> chain = OpenChain("layer0", opener, {});
  EXPECT_TRUE(chain.ok()) << chain.status().message();
  return chain.ok() ? std::move(chain).value() : nullptr;
}

TEST(ChainResolver, MatchesNaiveWalkOnRandomChains) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 60; round++) {
    auto specs = RandomChain(rng, 1 + rng() % 6);
    MemoryOpener opener;
    auto chain = OpenSpecs(specs, opener);
    ASSERT_TRUE(chain);
    ExtentMap map;
    ChainResolver resolver(*chain);
    Status st = resolver.Resolve(0, chain->virtual_size(), &map);
    ASSERT_TRUE(st.ok()) << st.message();

    uint64_t expected_start = 0;
    std::vector<uint8_t> buf;
    ReadScratch scratch;
    for (const Extent& e : map.extents()) {
      ASSERT_EQ(e.start, expected_start) << "extents must tile the disk";
      expected_start = e.end();
      buf.resize(e.length);
      ASSERT_TRUE(ReadExtent(*chain, e, 0, buf.data(), e.length, &scratch).ok());
      for (uint64_t off = e.start; off < e.end(); off += 512) {
        Expect want = Naive(specs, off);
        ASSERT_EQ(e.depth, want.depth) << "round " << round << " offset " << off;
        ASSERT_EQ(e.kind, want.kind) << "round " << round << " offset " << off;
        if (!e.reads_zero()) {
          uint8_t got = buf[off - e.start];
          ASSERT_EQ(got, PatternByte(specs[e.depth], want.byte, off)) << "round " << round << " offset " << off;
        }
      }
    }
    EXPECT_EQ(expected_start, chain->virtual_size());
  }
}

TEST(ChainResolver, WindowsGiveTheSameAnswer) {
  std::mt19937 rng(99);
  auto specs = RandomChain(rng, 4);
  MemoryOpener opener;
  auto chain = OpenSpecs(specs, opener);
  ASSERT_TRUE(chain);
  ChainResolver resolver(*chain);
  ExtentMap whole;
  Status st = resolver.Resolve(0, chain->virtual_size(), &whole);
  ASSERT_TRUE(st.ok()) << st.message();
  ExtentMap joined;
  ASSERT_TRUE(resolver
                  .ResolveAll(12345, [&](const ExtentMap& m) {
                    for (const Extent& e : m.extents()) joined.Append(e);
                    return Status::OK();
                  })
                  .ok());
  ASSERT_EQ(whole.extents().size(), joined.extents().size());
  for (size_t i = 0; i < whole.extents().size(); i++) {
    EXPECT_EQ(whole.extents()[i].start, joined.extents()[i].start);
    EXPECT_EQ(whole.extents()[i].length, joined.extents()[i].length);
    EXPECT_EQ(whole.extents()[i].kind, joined.extents()[i].kind);
  }
}

// Counts the bytes each layer's file is asked for.
class CountingOpener : public FileOpener {
 public:
  explicit CountingOpener(MemoryOpener& inner) : inner_(inner) {}
  Result<std::unique_ptr<ReadableFile>> Open(const std::string& path) override {
    auto f = inner_.Open(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<ReadableFile>(new Counting(std::move(f).value(), &bytes_read));
  }
  std::atomic<uint64_t> bytes_read{0};

 private:
  class Counting : public ReadableFile {
   public:
    Counting(std::unique_ptr<ReadableFile> f, std::atomic<uint64_t>* n) : f_(std::move(f)), n_(n) {}
    const std::string& name() const override { return f_->name(); }
    uint64_t size() const override { return f_->size(); }
    FileIdentity identity() const override { return f_->identity(); }
    Status ReadAt(uint64_t o, void* b, size_t n, size_t* got, CacheUse cache) const override {
      *n_ += n;
      return f_->ReadAt(o, b, n, got, cache);
    }

   private:
    std::unique_ptr<ReadableFile> f_;
    std::atomic<uint64_t>* n_;
  };
  MemoryOpener& inner_;
};

TEST(ChainResolver, ReadsEachL2TableOnceAndSkipsSettledRanges) {
  // 64 layers of 64 MiB (one L2 table each with 64 KiB clusters); every
  // layer allocates 1 % of the clusters.
  constexpr int kDepth = 64;
  std::vector<TestImageSpec> specs(kDepth);
  std::mt19937 rng(5);
  for (int d = 0; d < kDepth; d++) {
    specs[d].size = 64ull << 20;
    if (d + 1 < kDepth) specs[d].backing = "layer" + std::to_string(d + 1);
    for (int i = 0; i < 10; i++) specs[d].clusters.push_back({rng() % 1024, Fill::kData, 7});
  }
  MemoryOpener memory;
  for (int d = 0; d < kDepth; d++) memory.Add("layer" + std::to_string(d), BuildQcow2(specs[d]));
  CountingOpener opener(memory);
  auto chain = OpenChain("layer0", opener, {});
  ASSERT_TRUE(chain.ok());
  uint64_t after_open = opener.bytes_read;
  ChainResolver resolver(**chain);
  ExtentMap map;
  ASSERT_TRUE(resolver.Resolve(0, (*chain)->virtual_size(), &map).ok());
  // One 64 KiB L2 table per layer, nothing else.
  EXPECT_LE(opener.bytes_read - after_open, uint64_t(kDepth) * 65536);

  // A top layer that allocates everything settles the disk: no lower layer
  // is read at all.
  std::vector<TestImageSpec> full = specs;
  full[0].clusters.clear();
  for (uint64_t i = 0; i < 1024; i++) full[0].clusters.push_back({i, Fill::kZero, 0});
  MemoryOpener memory2;
  for (int d = 0; d < kDepth; d++) memory2.Add("layer" + std::to_string(d), BuildQcow2(full[d]));
  CountingOpener opener2(memory2);
  auto chain2 = OpenChain("layer0", opener2, {});
  ASSERT_TRUE(chain2.ok());
  after_open = opener2.bytes_read;
  ChainResolver resolver2(**chain2);
  ASSERT_TRUE(resolver2.Resolve(0, (*chain2)->virtual_size(), &map).ok());
  EXPECT_LE(opener2.bytes_read - after_open, 65536u);
  EXPECT_EQ(map.extents().size(), 1u);
}

TEST(Chain, RefusesLoopsDepthAndBadBackingNames) {
  TestImageSpec a;
  a.backing = "b";
  TestImageSpec b;
  b.backing = "a";
  MemoryOpener opener;
  opener.Add("a", BuildQcow2(a));
  opener.Add("b", BuildQcow2(b));
  auto chain = OpenChain("a", opener, {});
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.status().message().find("the backing chain loops"), std::string::npos) << chain.status().message();

  TestImageSpec self;
  self.backing = "self";
  opener.Add("self", BuildQcow2(self));
  chain = OpenChain("self", opener, {});
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.status().message().find("the backing chain loops"), std::string::npos);

  ChainOptions shallow;
  shallow.max_depth = 1;
  chain = OpenChain("a", opener, shallow);
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.status().message().find("deeper than 1"), std::string::npos);

  for (std::string name : {"json:{\"file\":\"x\"}", "nbd://host/x", "file:/etc/passwd", "http://x/y"}) {
    TestImageSpec p;
    p.backing = name;
    opener.Add("p", BuildQcow2(p));
    chain = OpenChain("p", opener, {});
    ASSERT_FALSE(chain.ok()) << name;
    EXPECT_NE(chain.status().message().find("protocol"), std::string::npos) << chain.status().message();
  }

  TestImageSpec no_format;
  no_format.backing = "a";
  no_format.backing_format = "";
  opener.Add("nf", BuildQcow2(no_format));
  chain = OpenChain("nf", opener, {});
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.status().message().find("no recorded format"), std::string::npos);

  TestImageSpec vmdk;
  vmdk.backing = "a";
  vmdk.backing_format = "vmdk";
  opener.Add("vm", BuildQcow2(vmdk));
  chain = OpenChain("vm", opener, {});
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.status().message().find("'vmdk' is not supported"), std::string::npos);
}

TEST(Chain, ResolvesBackingPathsAgainstTheNamingImage) {
  EXPECT_EQ(Chain::ResolveBackingPath("dir/sub/top.qcow2", "base.qcow2"), "dir/sub/base.qcow2");
  EXPECT_EQ(Chain::ResolveBackingPath("dir/top.qcow2", "../b/base.qcow2"), "dir/../b/base.qcow2");
  EXPECT_EQ(Chain::ResolveBackingPath("top.qcow2", "base.qcow2"), "base.qcow2");
  EXPECT_EQ(Chain::ResolveBackingPath("/x/top.qcow2", "/abs/base"), "/abs/base");
}

}  // namespace
}  // namespace clonekit::testing
