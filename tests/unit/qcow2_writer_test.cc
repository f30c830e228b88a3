// The qcow2 writer's output read back by our reader, and its refcounts
// recomputed from the tables it wrote (qemu-img check does this end to end).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <random>

#include "clonekit/chain_resolver.h"
#include "extent_reader.h"
#include "block_runs.h"
#include "qcow2_format.h"
#include "qcow2_writer.h"
#include <thread>

namespace clonekit {
namespace {

std::vector<uint8_t> ReadAll(int fd) {
  off_t size = lseek(fd, 0, SEEK_END);
  std::vector<uint8_t> b(size);
  EXPECT_EQ(pread(fd, b.data(), b.size(), 0), size);
  return b;
}

// Recomputes every cluster's references from the L1/L2/refcount tables and
// compares them with the refcounts stored (what qemu-img check does).
void CheckRefcounts(const std::vector<uint8_t>& bytes) {
  auto header = qcow2::DecodeHeader("out.qcow2", bytes.data(), bytes.size(), bytes.size());
  ASSERT_TRUE(header.ok()) << header.status().message();
  const uint64_t cs = 65536;
  std::map<uint64_t, uint64_t> refs;
  refs[0]++;
  for (uint64_t c = 0; c < (header->l1_size * 8 + cs - 1) / cs; c++) refs[1 + c]++;
  for (uint32_t i = 0; i < header->l1_size; i++) {
    uint64_t l2 = qcow2::LoadBE64(&bytes[header->l1_table_offset + i * 8]) & 0x00fffffffffffe00ull;
    if (!l2) continue;
    refs[l2 / cs]++;
    for (uint64_t j = 0; j < cs / 8; j++) {
      uint64_t entry = qcow2::LoadBE64(&bytes[l2 + j * 8]);
      if (!entry) continue;
      if (entry & (1ull << 62)) {
        uint64_t off = entry & ((1ull << 54) - 1);
        uint64_t sectors = ((entry >> 54) & 0xff) + 1;
        uint64_t last = ((off & ~511ull) + sectors * 512 - 1) / cs;
        for (uint64_t c = off / cs; c <= last; c++) refs[c]++;
      } else {
        refs[(entry & 0x00fffffffffffe00ull) / cs]++;
      }
    }
  }
  for (uint32_t t = 0; t < header->refcount_table_clusters; t++) refs[header->refcount_table_offset / cs + t]++;
  uint64_t blocks = 0;
  for (uint64_t i = 0; i < header->refcount_table_clusters * cs / 8; i++) {
    uint64_t block = qcow2::LoadBE64(&bytes[header->refcount_table_offset + i * 8]);
    if (!block) continue;
    refs[block / cs]++;
    blocks++;
  }
  ASSERT_GT(blocks, 0u);
  uint64_t clusters = (bytes.size() + cs - 1) / cs;
  for (uint64_t c = 0; c < clusters; c++) {
    uint64_t block = qcow2::LoadBE64(&bytes[header->refcount_table_offset + (c / 32768) * 8]);
    uint16_t stored = static_cast<uint16_t>((bytes[block + (c % 32768) * 2] << 8) | bytes[block + (c % 32768) * 2 + 1]);
    ASSERT_EQ(stored, refs[c]) << "cluster " << c;
  }
}

class Qcow2WriterTest : public ::testing::TestWithParam<OutputCompression> {};

TEST_P(Qcow2WriterTest, RoundTripAndRefcounts) {
  char path[] = "/tmp/clonekit-writer-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  const uint64_t size = (1ull << 30) + 4096;  // spans three L2 tables
  auto writer = Qcow2Writer::Create(fd, "out.qcow2", size, GetParam());
  ASSERT_TRUE(writer.ok());

  std::mt19937 rng(3);
  std::map<uint64_t, std::vector<uint8_t>> written;  // offset -> bytes
  uint64_t pos = 0;
  while (pos < size - 200000) {
    pos += (rng() % 64) * 65536 + rng() % 5000;
    std::vector<uint8_t> data(1 + rng() % 150000);
    for (size_t i = 0; i < data.size(); i++) data[i] = i % 3 ? static_cast<uint8_t>(rng()) : 'x';
    if (pos + data.size() > size) break;
    ASSERT_TRUE((*writer)->Write(pos, data.data(), data.size()).ok());
    written[pos] = data;
    pos += data.size();
  }
  ASSERT_TRUE((*writer)->Finish().ok());

  auto bytes = ReadAll(fd);
  close(fd);
  auto header = qcow2::DecodeHeader("out.qcow2", bytes.data(), bytes.size(), bytes.size());
  ASSERT_TRUE(header.ok()) << header.status().message();
  EXPECT_EQ(header->size, size);
  EXPECT_EQ(header->backing_file, "");

  // Read back through the real reader.
  auto file = NewMemoryFile("out.qcow2", bytes);
  auto image = OpenImage(std::move(file), ImageFormat::kQcow2);
  ASSERT_TRUE(image.ok());
  std::vector<std::unique_ptr<Image>> layers;
  // A one-layer chain via the public opener.
  class OneFile : public FileOpener {
   public:
    explicit OneFile(std::vector<uint8_t> b) : b_(std::move(b)) {}
    Result<std::unique_ptr<ReadableFile>> Open(const std::string& p) override { return NewMemoryFile(p, b_); }
    std::vector<uint8_t> b_;
  } opener(bytes);
  auto chain = OpenChain("out.qcow2", opener, {});
  ASSERT_TRUE(chain.ok());
  for (const auto& [offset, data] : written) {
    ExtentMap map;
    ASSERT_TRUE(ChainResolver(**chain).Resolve(offset, data.size(), &map).ok());
    std::vector<uint8_t> got(data.size());
    ReadScratch scratch;
    for (const Extent& e : map.extents()) {
      ASSERT_TRUE(ReadExtent(**chain, e, 0, got.data() + (e.start - offset), e.length, &scratch).ok());
    }
    ASSERT_EQ(got, data) << "at " << offset;
  }

  CheckRefcounts(bytes);
}

INSTANTIATE_TEST_SUITE_P(Compression, Qcow2WriterTest,
                         ::testing::Values(OutputCompression::kNone, OutputCompression::kZstd,
                                           OutputCompression::kDeflate));

}  // namespace
}  // namespace clonekit

namespace clonekit {
namespace {

TEST(Qcow2Writer, ParallelWriteClusterKeepsRefcountsExact) {
  char path[] = "/tmp/clonekit-writer-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  auto writer = Qcow2Writer::Create(fd, "out.qcow2", 2ull << 30, OutputCompression::kZstd);
  ASSERT_TRUE(writer.ok());
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<bool> ok{true};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<uint8_t> data(Qcow2Writer::kClusterSize);
      Qcow2Writer::Scratch scratch;
      // Thread t owns clusters i with i % kThreads == t; half compressible.
      for (uint64_t i = t; i < 32768; i += kThreads * (1 + rng() % 3)) {
        for (size_t b = 0; b < data.size(); b++) data[b] = (b / 2048) % 2 ? static_cast<uint8_t>(rng()) : 'z';
        if (i % 7 == 0) std::fill(data.begin(), data.end(), 0);  // stays unallocated
        if (!(*writer)->WriteCluster(i, data.data(), &scratch).ok()) ok = false;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(ok);
  ASSERT_TRUE((*writer)->Finish().ok());
  auto bytes = ReadAll(fd);
  close(fd);
  CheckRefcounts(bytes);
}

}  // namespace
}  // namespace clonekit
