// ExtentMap coalescing rules.
#include <gtest/gtest.h>

#include "clonekit/extent_map.h"

namespace clonekit {
namespace {

Extent Data(uint64_t start, uint64_t len, uint64_t host, uint32_t depth = 0) {
  Extent e;
  e.start = start;
  e.length = len;
  e.kind = RunKind::kData;
  e.host.valid = true;
  e.host.offset = host;
  e.depth = depth;
  return e;
}

TEST(ExtentMap, MergesContiguousHostRanges) {
  ExtentMap m;
  m.Append(Data(0, 100, 1000));
  m.Append(Data(100, 50, 1100));
  ASSERT_EQ(m.extents().size(), 1u);
  EXPECT_EQ(m.extents()[0].length, 150u);
}

TEST(ExtentMap, KeepsApartWhatDiffers) {
  ExtentMap m;
  m.Append(Data(0, 100, 1000));
  m.Append(Data(100, 100, 5000));            // host gap
  m.Append(Data(200, 100, 5100, 1));         // other layer
  Extent z;
  z.start = 300;
  z.length = 10;
  z.kind = RunKind::kZero;
  m.Append(z);
  Extent c;
  c.start = 310;
  c.length = 10;
  c.kind = RunKind::kCompressed;
  m.Append(c);
  c.start = 320;
  m.Append(c);  // compressed extents never merge
  EXPECT_EQ(m.extents().size(), 6u);
  EXPECT_EQ(m.data_bytes(), 320u);
}

TEST(ExtentMap, SortAndCoalesce) {
  ExtentMap m;
  m.Append(Data(100, 100, 1100));
  m.Append(Data(0, 100, 1000));  // out of order: Append cannot merge it
  m.SortAndCoalesce();
  ASSERT_EQ(m.extents().size(), 1u);
  EXPECT_EQ(m.extents()[0].start, 0u);
  EXPECT_EQ(m.extents()[0].length, 200u);
}

}  // namespace
}  // namespace clonekit
