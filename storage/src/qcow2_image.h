// A qcow2 layer (internal): the validated header, the active L1 table, and a
// one-table L2 cache, which is all a front-to-back walk ever needs.
#ifndef CLONEKIT_STORAGE_QCOW2_IMAGE_H_
#define CLONEKIT_STORAGE_QCOW2_IMAGE_H_

#include <vector>

#include "clonekit/image.h"
#include "qcow2_format.h"

namespace clonekit {

class Qcow2Image final : public Image {
 public:
  static Result<std::unique_ptr<Image>> Open(std::unique_ptr<ReadableFile> file);

  const ImageInfo& info() const override { return info_; }
  Status Describe(uint64_t offset, uint64_t max_length, LayerRun* run) override;
  Status ReadCompressed(const LayerRun& run, uint8_t* out, std::vector<uint8_t>* scratch) const override;

 private:
  Qcow2Image(std::unique_ptr<ReadableFile> file, qcow2::Header header);
  Status LoadL1();
  // Makes l2_ hold the table for l1_index; *present false when unallocated.
  Status LoadL2(uint64_t l1_index, bool* present);
  // Decodes the (sub)cluster holding guest offset `offset` from the cached table.
  Status UnitAt(uint64_t offset, LayerRun* unit, uint64_t* unit_end);
  std::string Where(uint64_t guest_offset) const;
  // End of the run of all-zero (unallocated) entries of the cached table
  // starting at guest offset `offset`, capped at limit; offset if none.
  uint64_t EmptyEntriesEnd(uint64_t offset, uint64_t limit) const;

  qcow2::Header header_;
  qcow2::Geometry geometry_;
  ImageInfo info_;
  std::vector<uint64_t> l1_;
  std::vector<uint8_t> l2_;       // the cached L2 table
  uint64_t l2_l1_index_ = UINT64_MAX;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_QCOW2_IMAGE_H_
