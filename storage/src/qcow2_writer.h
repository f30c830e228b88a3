// Qcow2Writer (internal): a standalone qcow2 v3 image (64 KiB clusters,
// 16-bit refcounts, no backing file).
//
// WriteCluster is thread-safe: each caller zero-checks and compresses its
// cluster on its own thread, takes a host offset from the allocator under a
// short lock, and writes at that offset in parallel with the others. L2
// tables stay in memory until the copy has moved past their range
// (CompleteBelow), so memory is bounded by the window being copied.
#ifndef CLONEKIT_STORAGE_QCOW2_WRITER_H_
#define CLONEKIT_STORAGE_QCOW2_WRITER_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "block_runs.h"
#include "drop_behind.h"
#include "clonekit/collapse.h"
#include "write_fully.h"

namespace clonekit {

class Qcow2Writer final {
 public:
  static constexpr uint32_t kClusterBits = 16;
  static constexpr uint64_t kClusterSize = 1ull << kClusterBits;

  static Result<std::unique_ptr<Qcow2Writer>> Create(int fd, const std::string& name, uint64_t virtual_size,
                                                     OutputCompression compression,
                                                     CacheUse cache = CacheUse::kFill);

  // Per-thread buffer for compressed output.
  struct Scratch {
    std::vector<uint8_t> packed;
  };
  // Stores guest cluster `index` (kClusterSize bytes); all-zero clusters stay
  // unallocated. Safe to call from several threads for different clusters.
  Status WriteCluster(uint64_t index, const uint8_t* data, Scratch* scratch);
  // Every cluster below guest offset `limit` is written: write out their L2 tables.
  Status CompleteBelow(uint64_t limit);

  // For one sequential caller (the unit test's writer of arbitrary pieces):
  // assembles whole clusters from pieces in ascending order.
  [[nodiscard]] Status Write(uint64_t offset, const uint8_t* data, size_t length);
  // Writes the remaining L2 tables, the L1 table, refcounts and the header.
  [[nodiscard]] Status Finish();

 private:
  Qcow2Writer(int fd, std::string name, uint64_t virtual_size, OutputCompression compression, uint64_t l1_size);
  uint64_t AllocateCluster();          // mu_ held
  uint64_t AllocateBytes(uint64_t n);  // mu_ held
  void Reference(uint64_t offset, uint64_t n);
  Status FlushL2(uint64_t l1_index, const std::vector<uint64_t>& table);  // mu_ held
  Status WriteL1();
  Status WriteRefcounts(uint64_t* table_offset, uint64_t* table_clusters);
  Status WriteHeader(uint64_t refcount_table_offset, uint64_t refcount_table_clusters);

  const int fd_;
  const std::string name_;
  const uint64_t virtual_size_;
  const OutputCompression compression_;
  UncachedIo uncached_;       // whole data clusters' writes
  bool spare_cache_ = false;  // CacheUse::kSpare
  DropBehind drop_behind_{fd_};  // spare mode: what was written, a window later (mu_)

  std::mutex mu_;  // guards everything below
  std::vector<uint64_t> l1_;
  std::map<uint64_t, std::vector<uint64_t>> l2_;  // L2 tables not yet written, by L1 index
  uint64_t end_ = 0;                              // allocation cursor (bytes)
  std::vector<uint16_t> refcounts_;               // per host cluster

  // Sequential Write() state.
  std::vector<uint8_t> cluster_;
  uint64_t cluster_index_ = UINT64_MAX;
  bool cluster_dirty_ = false;
  Scratch scratch_;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_QCOW2_WRITER_H_
