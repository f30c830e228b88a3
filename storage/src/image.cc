#include "clonekit/image.h"

#include <cstring>
#include <vector>

#include "qcow2_format.h"
#include "qcow2_image.h"

namespace clonekit {

namespace {

// A raw layer: guest offset == host offset. Its size is the file size
// rounded up to 512 bytes (as qemu sees it); the tail reads as zeros.
class RawImage final : public Image {
 public:
  explicit RawImage(std::unique_ptr<ReadableFile> file) : Image(std::move(file)) {
    info_.format = ImageFormat::kRaw;
    info_.virtual_size = (file_->size() + 511) & ~uint64_t(511);
  }

  const ImageInfo& info() const override { return info_; }

  Status Describe(uint64_t offset, uint64_t max_length, LayerRun* run) const override {
    uint64_t limit = std::min(offset + max_length, info_.virtual_size);
    bool is_data = false;
    uint64_t end = limit;
    CLONEKIT_RETURN_IF_ERROR(file_->Segment(offset, limit, &is_data, &end));
    if (end <= offset) end = limit;  // never return an empty run
    *run = LayerRun();
    run->kind = is_data ? RunKind::kData : RunKind::kZero;
    run->length = end - offset;
    run->host.offset = offset;
    run->host.valid = true;
    return Status::OK();
  }

 private:
  ImageInfo info_;
};

}  // namespace

const char* FormatName(ImageFormat format) { return format == ImageFormat::kRaw ? "raw" : "qcow2"; }

Status Image::ReadHost(uint64_t host_offset, void* buf, size_t length, CacheUse cache) const {
  size_t got = 0;
  CLONEKIT_RETURN_IF_ERROR(file_->ReadAt(host_offset, buf, length, &got, cache));
  if (got < length) std::memset(static_cast<uint8_t*>(buf) + got, 0, length - got);
  return Status::OK();
}

Status Image::ReadCompressed(const HostLocation&, uint8_t*, std::vector<uint8_t>*, CacheUse) const {
  return Status::NotSupported(name(), "compressed clusters in a raw image");
}

Status Image::InflateCluster(const HostLocation&, const uint8_t*, size_t, uint8_t*) const {
  return Status::NotSupported(name(), "compressed clusters in a raw image");
}

Result<std::unique_ptr<Image>> OpenImage(std::unique_ptr<ReadableFile> file, ImageFormat format) {
  if (format == ImageFormat::kRaw) return std::unique_ptr<Image>(new RawImage(std::move(file)));
  return Qcow2Image::Open(std::move(file));
}

Result<ImageFormat> ParseFormat(const std::string& file, const std::string& name) {
  if (name == "qcow2") return ImageFormat::kQcow2;
  if (name == "raw") return ImageFormat::kRaw;
  std::string shown;
  for (char c : name) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  return Status::NotSupported(file, "image format '" + shown + "' is not supported (raw or qcow2)");
}

ImageFormat DetectFormat(const ReadableFile& file) {
  uint8_t magic[4] = {};
  size_t got = 0;
  if (!file.ReadAt(0, magic, 4, &got).ok() || got < 4) return ImageFormat::kRaw;
  return qcow2::LoadBE32(magic) == qcow2::kMagic ? ImageFormat::kQcow2 : ImageFormat::kRaw;
}

}  // namespace clonekit
