#include "source_pages.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "uncached_io.h"

namespace clonekit {

namespace {

constexpr uint64_t kPage = 4096;

// Whether a buffered read of `fd` may carry RWF_DONTCACHE.
bool TakesDontcache(int fd) {
  if (!DontcacheAllowed()) return false;
  uint8_t byte;
  struct iovec iov = {&byte, 1};
  return preadv2(fd, &iov, 1, 0, RWF_DONTCACHE) >= 0 || errno != EOPNOTSUPP;
}

}  // namespace

SourcePages::SourcePages(const Chain& chain, CacheUse use) {
  if (use != CacheUse::kSpare) return;
  layers_.resize(chain.depth());
  for (uint32_t d = 0; d < chain.depth(); d++) {
    const int fd = chain.layer(d).file().fd();
    const uint64_t size = chain.layer(d).file().size();
    if (fd < 0 || size == 0 || TakesDontcache(fd)) continue;
    void* m = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) continue;  // advice only: this layer is not spared
    Layer& layer = layers_[d];
    layer.fd = fd;
    layer.mapping = static_cast<const uint8_t*>(m);
    layer.mapped_bytes = (size + kPage - 1) / kPage * kPage;
    active_ = true;
  }
}

SourcePages::~SourcePages() {
  for (Layer& layer : layers_) {
    if (layer.mapping) munmap(const_cast<uint8_t*>(layer.mapping), layer.mapped_bytes);
  }
}

void SourcePages::BeforeWindow(const ExtentMap& map) {
  if (!active_) return;
  for (const Extent& e : map.extents()) {
    if (e.depth >= layers_.size() || layers_[e.depth].fd < 0) continue;
    uint64_t bytes = 0;
    if (e.kind == RunKind::kData && e.host.valid) bytes = e.length;
    if (e.kind == RunKind::kCompressed) bytes = e.host.compressed_size;
    if (bytes == 0) continue;
    const uint64_t start = e.host.offset / kPage * kPage;
    layers_[e.depth].reads.push_back({start, (e.host.offset + bytes + kPage - 1) / kPage * kPage});
  }
  for (Layer& layer : layers_) {
    if (!layer.reads.empty()) Note(layer);
  }
}

// Merges the window's read ranges and keeps the runs of pages mincore says
// are not cached now.
void SourcePages::Note(Layer& layer) {
  std::sort(layer.reads.begin(), layer.reads.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (const auto& r : layer.reads) {
    if (!merged.empty() && r.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  layer.reads.clear();
  std::vector<unsigned char> resident;
  for (auto [start, end] : merged) {
    end = std::min(end, layer.mapped_bytes);
    if (start >= end) continue;
    resident.resize((end - start) / kPage);
    if (mincore(const_cast<uint8_t*>(layer.mapping) + start, end - start, resident.data()) < 0) continue;
    for (size_t i = 0; i < resident.size();) {
      if (resident[i] & 1) {
        i++;
        continue;
      }
      size_t j = i;
      while (j < resident.size() && !(resident[j] & 1)) j++;
      layer.drop.push_back({start + i * kPage, start + j * kPage});
      i = j;
    }
  }
}

void SourcePages::AfterWindow() {
  for (Layer& layer : layers_) {
    for (auto [start, end] : layer.drop) {
      posix_fadvise(layer.fd, static_cast<off_t>(start), static_cast<off_t>(end - start), POSIX_FADV_DONTNEED);
    }
    layer.drop.clear();
  }
}

}  // namespace clonekit
