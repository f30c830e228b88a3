// Header decoding: valid images open; each field qemu validates is refused
// with a message that names the file and the field.
#include <gtest/gtest.h>

#include "qcow2_format.h"
#include "test_images.h"

namespace clonekit::testing {
namespace {

Result<qcow2::Header> Decode(const std::vector<uint8_t>& img) {
  return qcow2::DecodeHeader("img.qcow2", img.data(), img.size(), img.size());
}

void ExpectRefused(const std::vector<uint8_t>& img, const std::string& fragment) {
  Result<qcow2::Header> h = Decode(img);
  ASSERT_FALSE(h.ok()) << "expected refusal containing: " << fragment;
  EXPECT_NE(h.status().message().find("img.qcow2: "), std::string::npos) << h.status().message();
  EXPECT_NE(h.status().message().find(fragment), std::string::npos) << h.status().message();
}

TEST(Qcow2Header, DecodesV3WithBacking) {
  TestImageSpec spec;
  spec.size = 3 << 20;
  spec.backing = "../base/disk.raw";
  spec.backing_format = "raw";
  Result<qcow2::Header> h = Decode(BuildQcow2(spec));
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->version, 3u);
  EXPECT_EQ(h->size, 3u << 20);
  EXPECT_EQ(h->cluster_size(), 65536u);
  EXPECT_EQ(h->backing_file, "../base/disk.raw");
  EXPECT_EQ(h->backing_format, "raw");
  EXPECT_EQ(h->l2_entries(), 8192u);
}

TEST(Qcow2Header, DecodesV2) {
  TestImageSpec spec;
  spec.version = 2;
  spec.cluster_bits = 9;
  Result<qcow2::Header> h = Decode(BuildQcow2(spec));
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->version, 2u);
  EXPECT_EQ(h->refcount_order, 4u);
  EXPECT_EQ(h->header_length, 72u);
}

TEST(Qcow2Header, RefusesBadMagicVersionAndTruncation) {
  auto img = BuildQcow2({});
  auto bad = img;
  bad[0] = 'X';
  ExpectRefused(bad, "bad magic");
  for (uint32_t v : {0u, 1u, 4u}) {
    bad = img;
    Poke32(bad, kOffVersion, v);
    ExpectRefused(bad, "unsupported qcow2 version");
  }
  std::vector<uint8_t> truncated(img.begin(), img.begin() + 50);
  Result<qcow2::Header> h = qcow2::DecodeHeader("img.qcow2", truncated.data(), 50, 50);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("truncated header"), std::string::npos);
}

TEST(Qcow2Header, RefusesClusterBitsOutOfRange) {
  for (uint32_t bits : {0u, 8u, 22u, 31u, 32u, 63u, 0xffffffffu}) {
    auto img = BuildQcow2({});
    Poke32(img, kOffClusterBits, bits);
    ExpectRefused(img, "cluster_bits");
  }
}

TEST(Qcow2Header, RefusesHeaderLength) {
  for (uint32_t len : {0u, 103u, 0x10001u, 0x7fffffffu, 0xffffffffu}) {
    auto img = BuildQcow2({});
    Poke32(img, kOffHeaderLength, len);
    ExpectRefused(img, "header_length");
  }
}

TEST(Qcow2Header, RefusesFeatureBitsAndEncryption) {
  auto img = BuildQcow2({});
  auto bad = img;
  Poke64(bad, kOffIncompat, 1ull << 5);
  ExpectRefused(bad, "unknown incompatible feature bits 0x20");
  bad = img;
  Poke64(bad, kOffIncompat, qcow2::kIncompatCorrupt);
  ExpectRefused(bad, "marked corrupt");
  bad = img;
  Poke64(bad, kOffIncompat, qcow2::kIncompatDataFile);
  ExpectRefused(bad, "external data file");
  for (uint32_t crypt : {1u, 2u, 77u}) {
    bad = img;
    Poke32(bad, kOffCrypt, crypt);
    ExpectRefused(bad, "encrypted");
  }
  bad = img;
  Poke32(bad, kOffRefcountOrder, 7);
  ExpectRefused(bad, "refcount_order 7");
  bad = img;
  bad[104] = 2;
  ExpectRefused(bad, "unknown compression type 2");
  bad = img;
  bad[104] = 1;  // zstd without the incompatible bit
  ExpectRefused(bad, "compression type");
}

TEST(Qcow2Header, AcceptsDirtyAndLazyRefcounts) {
  auto img = BuildQcow2({});
  Poke64(img, kOffIncompat, qcow2::kIncompatDirty);
  Poke64(img, 80, qcow2::kCompatLazyRefcounts);
  EXPECT_TRUE(Decode(img).ok());
}

TEST(Qcow2Header, RefusesExtendedL2WithSmallClusters) {
  TestImageSpec spec;
  spec.cluster_bits = 13;
  auto img = BuildQcow2(spec);
  Poke64(img, kOffIncompat, qcow2::kIncompatExtendedL2);
  ExpectRefused(img, "extended L2 entries need clusters of at least 16 KiB");
}

TEST(Qcow2Header, RefusesL1Problems) {
  auto img = BuildQcow2({});
  auto bad = img;
  Poke32(bad, kOffL1Size, 0xffffffff);
  ExpectRefused(bad, "L1 table too large");
  bad = img;
  Poke32(bad, kOffL1Size, 0x7fffffff);
  ExpectRefused(bad, "L1 table too large");
  bad = img;
  Poke32(bad, kOffL1Size, 0);
  ExpectRefused(bad, "L1 table is too small");
  bad = img;
  Poke64(bad, kOffL1Offset, 0x7fffffffffff0000ull);
  ExpectRefused(bad, "past end of file");
  bad = img;
  Poke64(bad, kOffL1Offset, 0x12345);
  ExpectRefused(bad, "not cluster aligned");
  bad = img;
  Poke64(bad, kOffSize, ~0ull);
  ExpectRefused(bad, "too large");
  bad = img;
  Poke64(bad, kOffSize, 1ull << 50);  // needs far more L1 entries than present
  ExpectRefused(bad, "L1 table is too small");
}

TEST(Qcow2Header, RefusesOtherTables) {
  auto img = BuildQcow2({});
  auto bad = img;
  Poke32(bad, kOffRefcountClusters, 0xffffffff);
  ExpectRefused(bad, "refcount table too large");
  bad = img;
  Poke64(bad, kOffRefcountOffset, 0x1234567890abcdefull);
  ExpectRefused(bad, "refcount table offset");
  bad = img;
  Poke32(bad, kOffSnapshots, 0xffffffff);
  ExpectRefused(bad, "too many internal snapshots");
  bad = img;
  Poke32(bad, kOffSnapshots, 1);
  Poke64(bad, kOffSnapshotsOffset, 0x7fffffffffff0000ull);
  ExpectRefused(bad, "snapshot table offset");
}

TEST(Qcow2Header, RefusesBackingNameProblems) {
  TestImageSpec spec;
  spec.backing = "base.qcow2";
  auto img = BuildQcow2(spec);
  auto bad = img;
  Poke32(bad, kOffBackingSize, 0xffffffff);
  ExpectRefused(bad, "backing file name too long");
  bad = img;
  Poke32(bad, kOffBackingSize, 1024);
  ExpectRefused(bad, "backing file name too long");
  bad = img;
  Poke64(bad, kOffBackingOffset, 0x20000);
  ExpectRefused(bad, "invalid backing file offset");
  bad = img;
  uint64_t at = Peek64(img, kOffBackingOffset);
  bad[at + 2] = 0;
  ExpectRefused(bad, "NUL");
  // Name past end of file.
  std::vector<uint8_t> cut(img.begin(), img.begin() + at + 4);
  Result<qcow2::Header> h = qcow2::DecodeHeader("img.qcow2", cut.data(), cut.size(), cut.size());
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("past end of file"), std::string::npos) << h.status().message();
}

TEST(Qcow2Header, RefusesOversizedExtension) {
  auto img = BuildQcow2({});
  Poke32(img, 112, 0x12345678);
  Poke32(img, 116, 0x7fffffff);
  ExpectRefused(img, "too large");
  img = BuildQcow2({});
  Poke32(img, 112, qcow2::kExtDataFile);
  Poke32(img, 116, 8);
  ExpectRefused(img, "external data file");
}

}  // namespace
}  // namespace clonekit::testing
