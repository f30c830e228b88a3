// PlanCopy (extents -> requests) and the zero-block scanner: pure functions
// checked on hand-made inputs whose answers are worked out in the comments.
#include <gtest/gtest.h>

#include "block_runs.h"
#include "copy_plan.h"

namespace clonekit::testing {
namespace {

Extent Data(uint64_t start, uint64_t length, uint32_t depth, uint64_t host) {
  Extent e;
  e.start = start;
  e.length = length;
  e.depth = depth;
  e.kind = RunKind::kData;
  e.host.valid = true;
  e.host.offset = host;
  return e;
}

Extent Zero(uint64_t start, uint64_t length) {
  Extent e;
  e.start = start;
  e.length = length;
  e.kind = RunKind::kZero;
  return e;
}

TEST(PlanCopy, JobsNeverCrossARequestBoundaryAndSegmentsPointIntoExtents) {
  ExtentMap map;
  map.Append(Data(0, 96 << 10, 0, 1 << 20));  // 96 KiB of layer 0
  map.Append(Data(96 << 10, 64 << 10, 1, 0));  // 64 KiB of layer 1, touching it
  CopyPlan plan;
  PlanCopy(map, 64 << 10, &plan);
  // [0,64K) | [64K,96K)+[96K,128K) | [128K,160K): three jobs at 64 KiB steps.
  ASSERT_EQ(plan.jobs.size(), 3u);
  EXPECT_EQ(plan.jobs[0].dst, 0u);
  EXPECT_EQ(plan.jobs[0].length, 64u << 10);
  EXPECT_EQ(plan.jobs[1].dst, 64u << 10);
  EXPECT_EQ(plan.jobs[1].length, 64u << 10);
  ASSERT_EQ(plan.jobs[1].count, 2u);  // two layers side by side share a request
  const CopySegment& a = plan.segments[plan.jobs[1].first];
  const CopySegment& b = plan.segments[plan.jobs[1].first + 1];
  EXPECT_EQ(a.extent, 0u);
  EXPECT_EQ(a.skip, 64u << 10);
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(a.length, 32u << 10);
  EXPECT_EQ(b.extent, 1u);
  EXPECT_EQ(b.skip, 0u);
  EXPECT_EQ(b.offset, 32u << 10);
  EXPECT_EQ(b.length, 32u << 10);
  EXPECT_EQ(plan.jobs[2].dst, 128u << 10);
  EXPECT_EQ(plan.segments[plan.jobs[2].first].skip, 32u << 10);
}

TEST(PlanCopy, AZeroRangeEndsAJob) {
  ExtentMap map;
  map.Append(Data(0, 4096, 0, 0));
  map.Append(Zero(4096, 4096));
  map.Append(Data(8192, 4096, 0, 8192));
  CopyPlan plan;
  PlanCopy(map, 1 << 20, &plan);
  ASSERT_EQ(plan.jobs.size(), 2u);
  EXPECT_EQ(plan.jobs[0].length, 4096u);
  EXPECT_EQ(plan.jobs[1].dst, 8192u);
  EXPECT_EQ(plan.segments.size(), 2u);
}

TEST(PlanCopy, AtMostMaxSegmentsPerJob) {
  ExtentMap map;
  // 40 one-block extents alternating between two layers: no two merge.
  for (uint32_t i = 0; i < 40; i++) map.Append(Data(i * 4096ull, 4096, i % 2, i * 8192ull));
  ASSERT_EQ(map.extents().size(), 40u);
  CopyPlan plan;
  PlanCopy(map, 1 << 20, &plan);
  ASSERT_EQ(plan.jobs.size(), 2u);
  EXPECT_EQ(plan.jobs[0].count, kMaxSegmentsPerJob);
  EXPECT_EQ(plan.jobs[1].count, 40 - kMaxSegmentsPerJob);
  EXPECT_EQ(plan.jobs[1].dst, kMaxSegmentsPerJob * 4096ull);
}

TEST(PlanCopy, ReplacesTheOldPlan) {
  ExtentMap map;
  map.Append(Data(0, 4096, 0, 0));
  CopyPlan plan;
  PlanCopy(map, 4096, &plan);
  PlanCopy(map, 4096, &plan);
  EXPECT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.segments.size(), 1u);
}

TEST(BlockRuns, RunsAreAlignedToTheDiskOffsetNotTheBuffer) {
  // 12 KiB at disk offset 2 KiB, 4 KiB blocks: block edges at buffer 2K, 6K, 10K.
  std::vector<uint8_t> buf(12 << 10, 0);
  buf[3000] = 1;  // in the block [2K, 6K)
  size_t cursor = 0;
  BlockRun run;
  std::vector<BlockRun> runs;
  while (NextBlockRun(buf.data(), buf.size(), 2048, 4096, &cursor, &run)) runs.push_back(run);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_TRUE(runs[0].zero);
  EXPECT_EQ(runs[0].end, 2048u);
  EXPECT_FALSE(runs[1].zero);
  EXPECT_EQ(runs[1].start, 2048u);
  EXPECT_EQ(runs[1].end, 6144u);
  EXPECT_TRUE(runs[2].zero);
  EXPECT_EQ(runs[2].end, 12288u);
}

TEST(BlockRuns, BlockZeroIsOneDataRun) {
  std::vector<uint8_t> buf(8192, 0);
  size_t cursor = 0;
  BlockRun run;
  ASSERT_TRUE(NextBlockRun(buf.data(), buf.size(), 0, 0, &cursor, &run));
  EXPECT_FALSE(run.zero);
  EXPECT_EQ(run.end, 8192u);
  EXPECT_FALSE(NextBlockRun(buf.data(), buf.size(), 0, 0, &cursor, &run));
}

}  // namespace
}  // namespace clonekit::testing
