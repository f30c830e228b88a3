// One layer of a backing chain: a raw file or a qcow2 image.
//
// An Image answers two questions: what does the layer itself say about a
// guest range (Describe), and what are the bytes at a host location (ReadHost,
// ReadCompressed). It knows nothing of the layers below it; ChainResolver
// combines layers.
#ifndef CLONEKIT_IMAGE_H_
#define CLONEKIT_IMAGE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "clonekit/file.h"
#include "clonekit/run_kind.h"
#include "clonekit/status.h"

namespace clonekit {

enum class ImageFormat { kRaw, kQcow2 };
const char* FormatName(ImageFormat format);

// What a layer itself holds for a run of guest bytes.
struct LayerRun {
  RunKind kind = RunKind::kUnallocated;
  uint64_t length = 0;
  HostLocation host;  // kData always; kZero when the layer keeps a host cluster
};

// Facts `info` shows; format-specific ones are only set for qcow2.
struct ImageInfo {
  ImageFormat format = ImageFormat::kRaw;
  uint64_t virtual_size = 0;
  uint64_t cluster_size = 0;
  uint32_t version = 0;
  uint32_t refcount_bits = 0;
  bool compression_zstd = false;
  bool lazy_refcounts = false;
  bool dirty = false;
  bool corrupt = false;
  bool extended_l2 = false;
  uint32_t internal_snapshots = 0;
  std::string backing_file;    // as written in the header
  std::string backing_format;  // from the header extension
};

class Image {
 public:
  virtual ~Image() = default;

  const std::string& name() const { return file_->name(); }
  const ReadableFile& file() const { return *file_; }
  virtual const ImageInfo& info() const = 0;
  uint64_t virtual_size() const { return info().virtual_size; }

  // Describes the layer from guest offset `offset` (< virtual_size) for at
  // most max_length bytes: fills *run with one homogeneous run (data runs
  // have contiguous host bytes). Validates every table entry it touches.
  // Safe to call from many threads at once (const: the caches it fills are
  // internal and thread-safe).
  [[nodiscard]] virtual Status Describe(uint64_t offset, uint64_t max_length, LayerRun* run) const = 0;

  // Sets *end to where the layer may first hold something at or after
  // `offset` (<= limit): every byte of [offset, *end) is unallocated here.
  // A cheap lower bound for walks over sparse layers: it validates nothing
  // beyond what Describe at `offset` would, may stop early (a qcow2 layer
  // stops at the end of the L2 table holding `offset`), and *end == offset
  // means "ask Describe". The default knows nothing. Thread-safe as Describe.
  [[nodiscard]] virtual Status SkipUnallocated(uint64_t offset, uint64_t limit, uint64_t* end) const {
    (void)limit;
    *end = offset;
    return Status::OK();
  }

  // Reads host bytes of this layer; bytes past the end of the file read as
  // zeros (as qemu does for a cluster that ends past EOF).
  Status ReadHost(uint64_t host_offset, void* buf, size_t length, CacheUse cache = CacheUse::kFill) const;

  // Inflates one compressed cluster into out (cluster_size bytes), reading
  // the stream into *scratch (reused across calls to avoid allocations).
  virtual Status ReadCompressed(const HostLocation& stream, uint8_t* out, std::vector<uint8_t>* scratch,
                                CacheUse cache = CacheUse::kFill) const;

  // Inflates a compressed cluster whose stream (stream.compressed_size
  // bytes, read by the caller, e.g. through io_uring) is `in`.
  virtual Status InflateCluster(const HostLocation& stream, const uint8_t* in, size_t in_size, uint8_t* out) const;

  // Bounds the metadata (qcow2 L2 tables) kept in memory for this layer; at
  // least one table is always kept. Call before reading starts.
  virtual void SetMetadataCacheBytes(uint64_t) {}

 protected:
  explicit Image(std::unique_ptr<ReadableFile> file) : file_(std::move(file)) {}
  std::unique_ptr<ReadableFile> file_;
};

// Opens `file` as the given format; a qcow2 header is fully validated here.
Result<std::unique_ptr<Image>> OpenImage(std::unique_ptr<ReadableFile> file, ImageFormat format);

// "raw" / "qcow2" -> format; anything else is refused.
Result<ImageFormat> ParseFormat(const std::string& file, const std::string& name);

// Detects the format of a top image the user named (qcow2 magic or raw).
// Only ever used for the image given on the command line, never for
// backing files: those carry their format in the header.
ImageFormat DetectFormat(const ReadableFile& file);

}  // namespace clonekit

#endif  // CLONEKIT_IMAGE_H_
