// L1/L2 entry decoding, including compressed descriptors and subclusters.
#include <gtest/gtest.h>

#include "qcow2_format.h"

namespace clonekit::qcow2 {
namespace {

const Geometry kV3 = {16, 3, false};

TEST(L2Entry, StandardKinds) {
  L2Entry e;
  EXPECT_EQ(DecodeL2Entry(0, kV3, &e), "");
  EXPECT_EQ(e.kind, RunKind::kUnallocated);

  EXPECT_EQ(DecodeL2Entry((1ull << 63) | 0x50000, kV3, &e), "");
  EXPECT_EQ(e.kind, RunKind::kData);
  EXPECT_EQ(e.host.offset, 0x50000u);
  EXPECT_TRUE(e.host.valid);

  EXPECT_EQ(DecodeL2Entry(1, kV3, &e), "");
  EXPECT_EQ(e.kind, RunKind::kZero);
  EXPECT_FALSE(e.host.valid);

  EXPECT_EQ(DecodeL2Entry(0x60000 | 1, kV3, &e), "");  // zero, host cluster kept
  EXPECT_EQ(e.kind, RunKind::kZero);
  EXPECT_TRUE(e.host.valid);
  EXPECT_EQ(e.host.offset, 0x60000u);
}

TEST(L2Entry, RefusesBadEntries) {
  L2Entry e;
  EXPECT_NE(DecodeL2Entry(0x50200, kV3, &e).find("unaligned"), std::string::npos);
  EXPECT_NE(DecodeL2Entry(0x50000 | (1ull << 57), kV3, &e).find("reserved bits"), std::string::npos);
  EXPECT_NE(DecodeL2Entry(0x50000 | 0x10, kV3, &e).find("reserved bits"), std::string::npos);
  Geometry v2 = {16, 2, false};
  EXPECT_NE(DecodeL2Entry(1, v2, &e).find("pre-v3"), std::string::npos);
  Geometry ext = {16, 3, true};
  EXPECT_NE(DecodeL2Entry(1, ext, &e).find("extended"), std::string::npos);
}

TEST(L2Entry, CompressedDescriptor64k) {
  // 64 KiB clusters: x = 62 - 8 = 54; offset bits 0..53, sectors 54..61.
  uint64_t offset = 0x123456789;  // unaligned byte offset
  uint64_t extra = 3;             // 3 additional sectors
  uint64_t entry = (1ull << 62) | (extra << 54) | offset;
  L2Entry e;
  ASSERT_EQ(DecodeL2Entry(entry, kV3, &e), "");
  EXPECT_EQ(e.kind, RunKind::kCompressed);
  EXPECT_EQ(e.host.offset, offset);
  EXPECT_EQ(e.host.compressed_size, 4 * 512 - (offset & 511));
}

TEST(L2Entry, CompressedDescriptor2MiB) {
  // 2 MiB clusters: x = 62 - 13 = 49.
  Geometry g = {21, 3, false};
  uint64_t entry = (1ull << 62) | (5ull << 49) | 0x200;
  L2Entry e;
  ASSERT_EQ(DecodeL2Entry(entry, g, &e), "");
  EXPECT_EQ(e.host.offset, 0x200u);
  EXPECT_EQ(e.host.compressed_size, 6u * 512);
}

TEST(L2Entry, CompressedOffsetTooLargeWithSmallClusters) {
  // 512-byte clusters: x = 61, so the offset field could exceed 2^56.
  Geometry g = {9, 3, false};
  L2Entry e;
  EXPECT_NE(DecodeL2Entry((1ull << 62) | (1ull << 58), g, &e).find("too large"), std::string::npos);
}

TEST(L2Entry, Subclusters) {
  L2Entry cluster;
  Geometry ext = {16, 3, true};
  ASSERT_EQ(DecodeL2Entry(0x70000, ext, &cluster), "");
  uint64_t bitmap = (1ull << 0) | (1ull << (32 + 1));  // sub 0 data, sub 1 zero, rest unallocated
  RunKind k;
  EXPECT_EQ(SubclusterKind(cluster, bitmap, 0, &k), "");
  EXPECT_EQ(k, RunKind::kData);
  EXPECT_EQ(SubclusterKind(cluster, bitmap, 1, &k), "");
  EXPECT_EQ(k, RunKind::kZero);
  EXPECT_EQ(SubclusterKind(cluster, bitmap, 2, &k), "");
  EXPECT_EQ(k, RunKind::kUnallocated);
  EXPECT_NE(SubclusterKind(cluster, (1ull << 3) | (1ull << 35), 3, &k).find("both"), std::string::npos);

  L2Entry none;
  ASSERT_EQ(DecodeL2Entry(0, ext, &none), "");
  EXPECT_NE(SubclusterKind(none, 1, 0, &k).find("unallocated cluster"), std::string::npos);
  EXPECT_EQ(SubclusterKind(none, 1ull << 32, 0, &k), "");
  EXPECT_EQ(k, RunKind::kZero);

  L2Entry comp;
  ASSERT_EQ(DecodeL2Entry((1ull << 62) | 0x70000, ext, &comp), "");
  EXPECT_NE(SubclusterKind(comp, 5, 0, &k), "");
}

TEST(L1Entry, Decode) {
  uint64_t l2 = 0;
  EXPECT_EQ(DecodeL1Entry((1ull << 63) | 0x30000, 16, &l2), "");
  EXPECT_EQ(l2, 0x30000u);
  EXPECT_NE(DecodeL1Entry(0x30200, 16, &l2).find("unaligned"), std::string::npos);
  EXPECT_NE(DecodeL1Entry(0x30000 | 1, 16, &l2).find("reserved"), std::string::npos);
  EXPECT_NE(DecodeL1Entry(0x30000 | (1ull << 60), 16, &l2).find("reserved"), std::string::npos);
}

}  // namespace
}  // namespace clonekit::qcow2
