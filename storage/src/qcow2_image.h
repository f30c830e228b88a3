// A qcow2 layer (internal): the validated header, the active L1 table, and a
// bounded cache of L2 tables shared by every thread reading the layer.
#ifndef CLONEKIT_STORAGE_QCOW2_IMAGE_H_
#define CLONEKIT_STORAGE_QCOW2_IMAGE_H_

#include <vector>

#include "clonekit/image.h"
#include "l2_cache.h"
#include "table_arena.h"
#include "qcow2_format.h"

namespace clonekit {

class Qcow2Image final : public Image {
 public:
  static Result<std::unique_ptr<Image>> Open(std::unique_ptr<ReadableFile> file);

  const ImageInfo& info() const override { return info_; }
  Status Describe(uint64_t offset, uint64_t max_length, LayerRun* run) const override;
  Status SkipUnallocated(uint64_t offset, uint64_t limit, uint64_t* end) const override;
  Status ReadCompressed(const HostLocation& stream, uint8_t* out, std::vector<uint8_t>* scratch,
                        CacheUse cache) const override;
  Status InflateCluster(const HostLocation& stream, const uint8_t* in, size_t in_size, uint8_t* out) const override;
  void SetMetadataCacheBytes(uint64_t bytes) override;
  // L2 tables are read into `arena` (shared by a chain's layers) from now
  // on; an image opened alone has its own. Call before reading starts.
  void UseTableArena(std::shared_ptr<TableArena> arena) { arena_ = std::move(arena); }

 private:
  Qcow2Image(std::unique_ptr<ReadableFile> file, qcow2::Header header);
  Status LoadL1();
  // The L2 table for l1_index, from the cache or the file; null when the
  // L1 entry says the table is unallocated.
  Status LoadL2(uint64_t l1_index, L2Cache::Table* table) const;
  // Decodes the (sub)cluster holding guest offset `offset` from table l2.
  Status UnitAt(const uint8_t* l2, uint64_t offset, LayerRun* unit, uint64_t* unit_end) const;
  std::string Where(uint64_t guest_offset) const;
  // End of the run of all-zero (unallocated) entries of table l2 starting
  // at guest offset `offset`, capped at limit; offset if none.
  uint64_t EmptyEntriesEnd(const uint8_t* l2, uint64_t offset, uint64_t limit) const;

  qcow2::Header header_;
  qcow2::Geometry geometry_;
  ImageInfo info_;
  std::vector<uint64_t> l1_;
  mutable L2Cache l2_cache_;  // thread-safe; filled by const readers
  std::shared_ptr<TableArena> arena_ = std::make_shared<TableArena>();
  const uint64_t id_;  // unique per process, for the per-thread memo in LoadL2
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_QCOW2_IMAGE_H_
