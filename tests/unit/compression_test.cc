// Cluster codecs: round trips, and refusal of corrupt or wrong-sized streams.
#include <gtest/gtest.h>

#include <random>

#include "compression.h"

namespace clonekit {
namespace {

std::vector<uint8_t> HalfRandom(size_t n) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(42);
  for (size_t i = 0; i < n; i++) v[i] = i % 2 ? static_cast<uint8_t>(rng()) : 'a';
  return v;
}

class CodecTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CodecTest, RoundTrip) {
  auto in = HalfRandom(65536);
  std::vector<uint8_t> packed(65536), out(65536);
  size_t n = CompressCluster(GetParam(), in.data(), in.size(), packed.data(), packed.size() - 512);
  ASSERT_GT(n, 0u);
  // Sector-rounded input with trailing garbage, as read from a real image.
  packed.resize(((n + 511) / 512) * 512, 0xee);
  EXPECT_EQ(DecompressCluster(GetParam(), packed.data(), packed.size(), out.data(), out.size()), "");
  EXPECT_EQ(in, out);
}

TEST_P(CodecTest, RefusesGarbage) {
  std::vector<uint8_t> garbage(1024, 0xff), out(65536);
  EXPECT_NE(DecompressCluster(GetParam(), garbage.data(), garbage.size(), out.data(), out.size()), "");
}

TEST_P(CodecTest, RefusesShortOutput) {
  auto in = HalfRandom(4096);  // inflates to 4 KiB, not one 64 KiB cluster
  std::vector<uint8_t> packed(8192), out(65536);
  size_t n = CompressCluster(GetParam(), in.data(), in.size(), packed.data(), packed.size());
  ASSERT_GT(n, 0u);
  std::string err = DecompressCluster(GetParam(), packed.data(), n, out.data(), out.size());
  EXPECT_NE(err.find("not one cluster"), std::string::npos) << err;
}

TEST_P(CodecTest, RefusesTruncatedStream) {
  auto in = HalfRandom(65536);
  std::vector<uint8_t> packed(65536), out(65536);
  size_t n = CompressCluster(GetParam(), in.data(), in.size(), packed.data(), packed.size());
  ASSERT_GT(n, 1000u);
  EXPECT_NE(DecompressCluster(GetParam(), packed.data(), n / 2, out.data(), out.size()), "");
}

TEST_P(CodecTest, IncompressibleReturnsZero) {
  std::vector<uint8_t> in(65536);
  std::mt19937 rng(7);
  for (auto& b : in) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> packed(65536);
  EXPECT_EQ(CompressCluster(GetParam(), in.data(), in.size(), packed.data(), 65536 - 512), 0u);
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values(Codec::kDeflate, Codec::kZstd));

}  // namespace
}  // namespace clonekit
