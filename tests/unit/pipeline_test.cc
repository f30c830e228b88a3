// The io_uring pipeline against the simple copier, with the kernel's
// results bent by the test hook: short reads (two in a row), short writes,
// -EAGAIN / -EINTR, and a read of 0 bytes inside the file.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>

#include "clonekit/chain_resolver.h"
#include "clonekit/collapse.h"
#include "extent_reader.h"
#include "test_images.h"

namespace clonekit::testing {
namespace {

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clonekit-pipeline-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto opener = NewPosixFileOpener({});
    auto chain = OpenChain(WriteTwoLayerChain(dir_, 8 << 20, 11), *opener, {});
    ASSERT_TRUE(chain.ok()) << chain.status().message();
    chain_ = std::move(chain).value();
    // The reference comes from another path: the resolver plus ReadExtent,
    // which resolver_test checks against a naive walk of the chain.
    reference_.assign(chain_->virtual_size(), 0);
    ExtentMap map;
    ASSERT_TRUE(ChainResolver(*chain_).Resolve(0, chain_->virtual_size(), &map).ok());
    ReadScratch scratch;
    for (const Extent& e : map.extents()) {
      ASSERT_TRUE(ReadExtent(*chain_, e, 0, reference_.data() + e.start, e.length, &scratch).ok());
    }
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::vector<uint8_t> Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  std::string dir_;
  std::unique_ptr<Chain> chain_;
  std::vector<uint8_t> reference_;
};

TEST_F(PipelineTest, ReferenceHasTheBuiltClusters) {
  // Cluster 1 of base is data filled with byte 2 except every 97th byte.
  EXPECT_EQ(reference_[65536 + 1], 2);
  // Cluster 0 of top is a zero cluster masking base's compressed cluster 0.
  EXPECT_EQ(reference_[100], 0);
}

TEST_F(PipelineTest, ShortReadsTwiceInARowShortWritesAndEagain) {
  std::atomic<int> reads{0}, writes{0}, shortened_reads{0}, shortened_writes{0}, again{0};
  CollapseOptions o;
  o.request_bytes = 64 << 10;
  o.queue_depth = 4;
  o.workers = 2;
  o.io_hook = [&](bool is_write, uint32_t requested, int result) -> int {
    int n = (is_write ? writes : reads)++;
    if (result <= 0) return result;
    if (n % 7 == 3) {
      again++;
      return n % 2 ? -EAGAIN : -EINTR;  // the I/O happened; it is simply redone
    }
    // Pattern per 3 completions: short, short, full -> two short in a row.
    if (n % 3 != 2 && requested >= 1024) {
      (is_write ? shortened_writes : shortened_reads)++;
      return static_cast<int>(requested / 2);
    }
    return result;
  };
  Status s = Collapse(*chain_, dir_ + "/out.raw", o);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_GT(shortened_reads.load(), 10);
  EXPECT_GT(shortened_writes.load(), 10);
  EXPECT_GT(again.load(), 5);
  EXPECT_EQ(Read("out.raw"), reference_);
}

TEST_F(PipelineTest, ZeroByteReadInsideTheFileIsCorruption) {
  CollapseOptions o;
  o.io_hook = [](bool is_write, uint32_t, int result) { return is_write ? result : 0; };
  Status s = Collapse(*chain_, dir_ + "/out.raw", o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find(".qcow2: unexpected end of file at byte "), std::string::npos) << s.message();
  EXPECT_NE(access((dir_ + "/out.raw").c_str(), F_OK), 0) << "no output on failure";
}

TEST_F(PipelineTest, WriteErrorsAreReportedWithTheOffset) {
  CollapseOptions o;
  o.io_hook = [](bool is_write, uint32_t, int result) { return is_write ? -ENOSPC : result; };
  Status s = Collapse(*chain_, dir_ + "/out.raw", o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("out.raw: write error at byte "), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s.message();
  EXPECT_NE(access((dir_ + "/out.raw").c_str(), F_OK), 0);
}

TEST_F(PipelineTest, SettingsDoNotChangeTheBytes) {
  struct Case {
    unsigned workers, depth;
    uint32_t request, sparse;
    bool direct, offload;
  };
  for (Case c : {Case{1, 1, 4096, 4096, false, false}, Case{3, 32, 1 << 20, 0, false, false},
                 Case{2, 8, 256 << 10, 65536, true, false}, Case{2, 8, 128 << 10, 4096, false, true}}) {
    CollapseOptions o;
    o.workers = c.workers;
    o.queue_depth = c.depth;
    o.request_bytes = c.request;
    o.sparse_block = c.sparse;
    o.direct = c.direct;
    o.copy_offload = c.offload;
    std::string out = dir_ + "/case.raw";
    unlink(out.c_str());
    Status s = Collapse(*chain_, out, o);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(Read("case.raw"), reference_) << c.workers << " workers, depth " << c.depth;
  }
}

TEST_F(PipelineTest, SmallWindowsGiveTheSameBytesAndMonotonicProgress) {
  CollapseOptions o;
  o.window_bytes = 3 << 20;  // not a multiple of anything in the images
  o.request_bytes = 1 << 20;
  std::vector<uint64_t> seen;
  o.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, 8u << 20);
    seen.push_back(done);
  };
  ASSERT_TRUE(Collapse(*chain_, dir_ + "/w.raw", o).ok());
  EXPECT_EQ(Read("w.raw"), reference_);
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back(), 8u << 20);
}

}  // namespace
}  // namespace clonekit::testing
