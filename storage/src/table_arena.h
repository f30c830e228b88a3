// TableArena (internal): the memory one chain's qcow2 L2 tables live in.
//
// A map or a collapse of a deep chain reads a table or two from every layer
// and keeps them: at depth 256 with 64 KiB clusters that is 16 MiB of fresh
// heap, and faulting it in 4 KiB at a time was a quarter of the time of a
// map at depth 256 on our VMs. The arena carves buffers out of 2 MiB-aligned
// chunks advised MADV_HUGEPAGE (one fault per chunk where transparent huge
// pages are "always" or "madvise"; plain pages elsewhere), and a released
// buffer goes on a free list for its size.
//
// Memory: the peak of live tables of the chain, plus at most one partly
// used chunk; all of it is unmapped when the arena goes.
// Thread-safe. A buffer holds a reference to its arena, so a table may
// outlive the chain (the per-thread memo in Qcow2Image::LoadL2 keeps one).
#ifndef CLONEKIT_STORAGE_TABLE_ARENA_H_
#define CLONEKIT_STORAGE_TABLE_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace clonekit {

class TableArena {
 public:
  static constexpr size_t kChunkBytes = 2 << 20;

  TableArena() = default;
  ~TableArena();
  TableArena(const TableArena&) = delete;
  TableArena& operator=(const TableArena&) = delete;

  // An uninitialised buffer of `bytes`, which goes back to `arena` when its
  // last reference is dropped; null when no memory can be mapped.
  // REQUIRES: bytes is a power of two, at most kChunkBytes.
  static std::shared_ptr<uint8_t> Get(const std::shared_ptr<TableArena>& arena, size_t bytes);

  // Bytes mapped for chunks so far (for tests).
  size_t mapped_bytes() const;

 private:
  uint8_t* Take(size_t bytes);
  void Put(uint8_t* buffer, size_t bytes);

  mutable std::mutex mu_;
  std::vector<uint8_t*> chunks_;  // each kChunkBytes, kChunkBytes-aligned
  size_t used_in_last_ = kChunkBytes;  // bytes carved from chunks_.back()
  std::map<size_t, std::vector<uint8_t*>> free_;  // released buffers by size
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_TABLE_ARENA_H_
