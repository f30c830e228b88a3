#include "table_arena.h"

#include <sys/mman.h>

#include <cstdint>

namespace clonekit {

namespace {

// A kChunkBytes region aligned to kChunkBytes: map twice the size and trim,
// since a huge page needs an aligned 2 MiB of the mapping.
uint8_t* MapAlignedChunk() {
  const size_t size = TableArena::kChunkBytes;
  void* p = mmap(nullptr, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + size - 1) & ~uintptr_t(size - 1);
  if (aligned > start) munmap(p, aligned - start);
  if (aligned + size < start + 2 * size) munmap(reinterpret_cast<void*>(aligned + size), start + 2 * size - aligned - size);
  // Advice only: where the kernel has no transparent huge pages this fails
  // and the chunk is plain pages.
  madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  return reinterpret_cast<uint8_t*>(aligned);
}

}  // namespace

TableArena::~TableArena() {
  for (uint8_t* chunk : chunks_) munmap(chunk, kChunkBytes);
}

std::shared_ptr<uint8_t> TableArena::Get(const std::shared_ptr<TableArena>& arena, size_t bytes) {
  uint8_t* buffer = arena->Take(bytes);
  if (!buffer) return nullptr;
  return std::shared_ptr<uint8_t>(buffer, [arena, bytes](uint8_t* p) { arena->Put(p, bytes); });
}

size_t TableArena::mapped_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return chunks_.size() * kChunkBytes;
}

uint8_t* TableArena::Take(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find(bytes);
  if (it != free_.end() && !it->second.empty()) {
    uint8_t* p = it->second.back();
    it->second.pop_back();
    return p;
  }
  // Buffers are powers of two, so aligning the carve point to the size
  // keeps every buffer naturally aligned (O_DIRECT-safe, cache-line aligned).
  size_t at = (used_in_last_ + bytes - 1) & ~(bytes - 1);
  if (chunks_.empty() || at + bytes > kChunkBytes) {
    uint8_t* chunk = MapAlignedChunk();
    if (!chunk) return nullptr;
    chunks_.push_back(chunk);
    at = 0;
  }
  used_in_last_ = at + bytes;
  return chunks_.back() + at;
}

void TableArena::Put(uint8_t* buffer, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  free_[bytes].push_back(buffer);
}

}  // namespace clonekit
