// TableArena: buffers are aligned to their size, come back for reuse when
// released (so memory stays at the peak of live tables), and keep the arena
// alive after its owner lets go.
#include "table_arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

namespace clonekit::testing {
namespace {

TEST(TableArena, BuffersAreAlignedDistinctAndWritable) {
  auto arena = std::make_shared<TableArena>();
  std::vector<std::shared_ptr<uint8_t>> held;
  std::set<uint8_t*> seen;
  for (size_t bytes : {size_t(512), size_t(64) << 10, size_t(4) << 10, size_t(64) << 10, TableArena::kChunkBytes}) {
    auto b = TableArena::Get(arena, bytes);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.get()) % bytes, 0u) << bytes;
    std::memset(b.get(), 0xab, bytes);
    EXPECT_TRUE(seen.insert(b.get()).second);
    held.push_back(b);
  }
  // No two live buffers overlap: each still holds its own fill.
  for (size_t i = 0; i < held.size(); i++) held[i].get()[0] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < held.size(); i++) EXPECT_EQ(held[i].get()[0], i);
}

TEST(TableArena, ReleasedBuffersAreReusedSoMemoryStaysAtThePeak) {
  auto arena = std::make_shared<TableArena>();
  constexpr size_t kTable = 64 << 10;
  // Stream 1000 tables through a cache of 4, as a collapse does.
  std::vector<std::shared_ptr<uint8_t>> live;
  for (int i = 0; i < 1000; i++) {
    live.push_back(TableArena::Get(arena, kTable));
    ASSERT_NE(live.back(), nullptr);
    if (live.size() > 4) live.erase(live.begin());
  }
  EXPECT_EQ(arena->mapped_bytes(), TableArena::kChunkBytes);  // 5 x 64 KiB fit one chunk
}

TEST(TableArena, ABufferKeepsItsArenaAlive) {
  auto arena = std::make_shared<TableArena>();
  auto b = TableArena::Get(arena, 4096);
  arena.reset();
  std::memset(b.get(), 1, 4096);  // still mapped: an unmapped chunk would fault here
  EXPECT_EQ(b.get()[4095], 1);
}

}  // namespace
}  // namespace clonekit::testing
