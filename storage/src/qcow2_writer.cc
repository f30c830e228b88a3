// Layout: cluster 0 header | L1 table | data clusters, compressed streams
// and L2 tables in allocation order | refcount blocks | refcount table.
// Every host cluster is referenced exactly once, except those holding
// compressed streams, which count one reference per stream touching them,
// so `qemu-img check` finds no leaks.
#include "qcow2_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include "compression.h"
#include "qcow2_format.h"

namespace clonekit {

namespace {

using qcow2::StoreBE16;
using qcow2::StoreBE32;
using qcow2::StoreBE64;

constexpr uint64_t kCs = Qcow2Writer::kClusterSize;
constexpr uint64_t kL2Entries = kCs / 8;
constexpr uint64_t kL2Span = kL2Entries * kCs;       // guest bytes one L2 table maps
constexpr uint32_t kRefcountOrder = 4;               // 16-bit refcounts
constexpr uint64_t kRefcountsPerBlock = kCs / 2;
constexpr uint32_t kHeaderLength = 112;              // v3 + compression type, padded
constexpr uint64_t kCopied = 1ull << 63;
constexpr uint64_t kCompressedFlag = 1ull << 62;

}  // namespace

Result<std::unique_ptr<Qcow2Writer>> Qcow2Writer::Create(int fd, const std::string& name, uint64_t virtual_size,
                                                         OutputCompression compression, CacheUse cache) {
  uint64_t l1_size = 0;
  if (!qcow2::L1EntriesFor(virtual_size, kClusterBits, kL2Entries, &l1_size) ||
      l1_size * 8 > qcow2::kMaxL1Bytes) {
    return Status::InvalidArgument(name + ": virtual size " + std::to_string(virtual_size) +
                                   " is too large for a qcow2 image with 64 KiB clusters");
  }
  if (ftruncate(fd, 0) < 0) return Status::FromErrno(name, "cannot truncate output", errno);
  auto writer = std::unique_ptr<Qcow2Writer>(new Qcow2Writer(fd, name, virtual_size, compression, l1_size));
  writer->uncached_ = UncachedIo(cache);
  writer->spare_cache_ = cache == CacheUse::kSpare;
  return writer;
}

Qcow2Writer::Qcow2Writer(int fd, std::string name, uint64_t virtual_size, OutputCompression compression,
                         uint64_t l1_size)
    : fd_(fd), name_(std::move(name)), virtual_size_(virtual_size), compression_(compression), l1_(l1_size, 0) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t l1_clusters = (l1_size * 8 + kCs - 1) / kCs;
  for (uint64_t i = 0; i < 1 + l1_clusters; i++) AllocateCluster();
}

uint64_t Qcow2Writer::AllocateCluster() {
  end_ = (end_ + kCs - 1) & ~(kCs - 1);
  uint64_t offset = end_;
  end_ += kCs;
  Reference(offset, kCs);
  return offset;
}

uint64_t Qcow2Writer::AllocateBytes(uint64_t n) {
  uint64_t offset = end_;
  end_ += n;
  Reference(offset, n);
  return offset;
}

void Qcow2Writer::Reference(uint64_t offset, uint64_t n) {
  uint64_t last = (offset + n - 1) / kCs;
  if (refcounts_.size() <= last) refcounts_.resize(last + 1 + last / 8, 0);
  for (uint64_t c = offset / kCs; c <= last; c++) refcounts_[c]++;
}

Status Qcow2Writer::WriteCluster(uint64_t index, const uint8_t* data, Scratch* scratch) {
  if (IsZero(data, kCs)) return Status::OK();  // stays unallocated
  size_t packed = 0;
  if (compression_ != OutputCompression::kNone) {
    scratch->packed.resize(kCs);
    Codec codec = compression_ == OutputCompression::kZstd ? Codec::kZstd : Codec::kDeflate;
    // Only worth it when at least one 512-byte sector is saved.
    packed = CompressCluster(codec, data, kCs, scratch->packed.data(), kCs - 512);
  }
  uint64_t offset, entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (packed > 0) {
      offset = AllocateBytes(packed);
      uint64_t extra_sectors = ((offset + packed - 1) >> 9) - (offset >> 9);
      entry = kCompressedFlag | (extra_sectors << (62 - (kClusterBits - 8))) | offset;
    } else {
      offset = AllocateCluster();
      entry = kCopied | offset;
    }
    std::vector<uint64_t>& table = l2_[index / kL2Entries];
    if (table.empty()) table.assign(kL2Entries, 0);
    table[index % kL2Entries] = entry;
  }
  // Whole clusters are written uncached in spare mode. Compressed streams
  // are packed side by side at byte offsets, so the next stream usually
  // shares a page with this one: dropping it at once would make that write
  // read it back. They are written back and dropped a window later
  // instead (DropBehind, in CompleteBelow).
  return packed > 0 ? WriteFully(fd_, name_, scratch->packed.data(), packed, offset)
                    : WriteFully(fd_, name_, data, kCs, offset, &uncached_);
}

Status Qcow2Writer::CompleteBelow(uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!l2_.empty() && (l2_.begin()->first + 1) * kL2Span <= limit) {
    CLONEKIT_RETURN_IF_ERROR(FlushL2(l2_.begin()->first, l2_.begin()->second));
    l2_.erase(l2_.begin());
  }
  if (spare_cache_) drop_behind_.WrittenBelow(end_);
  return Status::OK();
}

Status Qcow2Writer::FlushL2(uint64_t l1_index, const std::vector<uint64_t>& entries) {
  std::vector<uint8_t> table(kCs);
  for (uint64_t i = 0; i < kL2Entries; i++) StoreBE64(table.data() + i * 8, entries[i]);
  uint64_t offset = AllocateCluster();
  CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, table.data(), table.size(), offset));
  l1_[l1_index] = kCopied | offset;
  return Status::OK();
}

Status Qcow2Writer::Write(uint64_t offset, const uint8_t* data, size_t length) {
  while (length > 0) {
    uint64_t index = offset >> kClusterBits;
    if (index != cluster_index_) {
      if (cluster_dirty_) CLONEKIT_RETURN_IF_ERROR(WriteCluster(cluster_index_, cluster_.data(), &scratch_));
      cluster_dirty_ = false;
      cluster_index_ = index;
      cluster_.assign(kCs, 0);
    }
    size_t in_cluster = offset & (kCs - 1);
    size_t n = std::min<size_t>(length, kCs - in_cluster);
    std::copy(data, data + n, cluster_.begin() + in_cluster);
    cluster_dirty_ = true;
    offset += n;
    data += n;
    length -= n;
  }
  return Status::OK();
}

Status Qcow2Writer::Finish() {
  if (cluster_dirty_) CLONEKIT_RETURN_IF_ERROR(WriteCluster(cluster_index_, cluster_.data(), &scratch_));
  cluster_dirty_ = false;
  CLONEKIT_RETURN_IF_ERROR(CompleteBelow(UINT64_MAX));
  CLONEKIT_RETURN_IF_ERROR(WriteL1());
  uint64_t table_offset = 0, table_clusters = 0;
  CLONEKIT_RETURN_IF_ERROR(WriteRefcounts(&table_offset, &table_clusters));
  CLONEKIT_RETURN_IF_ERROR(WriteHeader(table_offset, table_clusters));
  if (spare_cache_) {
    // Everything is written: make it durable now (the commit's fdatasync
    // then finds nothing to do) and drop what is still cached.
    if (fdatasync(fd_) < 0) return Status::FromErrno(name_, "fdatasync failed", errno);
    drop_behind_.DropAll();
  }
  return Status::OK();
}

Status Qcow2Writer::WriteL1() {
  if (l1_.empty()) return Status::OK();
  std::vector<uint8_t> table(l1_.size() * 8);
  for (size_t i = 0; i < l1_.size(); i++) StoreBE64(table.data() + i * 8, l1_[i]);
  return WriteFully(fd_, name_, table.data(), table.size(), kCs);
}

// The refcount blocks and table go after everything else. They count
// themselves, so iterate until their number stops growing.
Status Qcow2Writer::WriteRefcounts(uint64_t* table_offset, uint64_t* table_clusters) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t data_clusters = (end_ + kCs - 1) / kCs;
  uint64_t blocks = 0, tables = 0;
  while (true) {
    uint64_t total = data_clusters + blocks + tables;
    uint64_t need_blocks = (total + kRefcountsPerBlock - 1) / kRefcountsPerBlock;
    uint64_t need_tables = (need_blocks * 8 + kCs - 1) / kCs;
    if (need_blocks == blocks && need_tables == tables) break;
    blocks = need_blocks;
    tables = need_tables;
  }
  end_ = data_clusters * kCs;
  uint64_t first_block = AllocateCluster();
  for (uint64_t i = 1; i < blocks; i++) AllocateCluster();
  *table_offset = AllocateCluster();
  for (uint64_t i = 1; i < tables; i++) AllocateCluster();
  *table_clusters = tables;

  std::vector<uint8_t> table(tables * kCs, 0);
  std::vector<uint8_t> block(kCs);
  for (uint64_t b = 0; b < blocks; b++) {
    std::fill(block.begin(), block.end(), 0);
    for (uint64_t i = 0; i < kRefcountsPerBlock; i++) {
      uint64_t cluster = b * kRefcountsPerBlock + i;
      if (cluster < refcounts_.size()) StoreBE16(block.data() + i * 2, refcounts_[cluster]);
    }
    uint64_t offset = first_block + b * kCs;
    CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, block.data(), block.size(), offset));
    StoreBE64(table.data() + b * 8, offset);
  }
  return WriteFully(fd_, name_, table.data(), table.size(), *table_offset);
}

Status Qcow2Writer::WriteHeader(uint64_t refcount_table_offset, uint64_t refcount_table_clusters) {
  std::vector<uint8_t> h(kHeaderLength + 8, 0);  // + end-of-extensions marker
  bool zstd = compression_ == OutputCompression::kZstd;
  StoreBE32(&h[0], qcow2::kMagic);
  StoreBE32(&h[4], 3);
  StoreBE32(&h[20], kClusterBits);
  StoreBE64(&h[24], virtual_size_);
  StoreBE32(&h[36], static_cast<uint32_t>(l1_.size()));
  StoreBE64(&h[40], l1_.empty() ? 0 : kCs);
  StoreBE64(&h[48], refcount_table_offset);
  StoreBE32(&h[56], static_cast<uint32_t>(refcount_table_clusters));
  StoreBE64(&h[72], zstd ? qcow2::kIncompatCompression : 0);
  StoreBE32(&h[96], kRefcountOrder);
  StoreBE32(&h[100], kHeaderLength);
  h[104] = zstd ? 1 : 0;
  return WriteFully(fd_, name_, h.data(), h.size(), 0);
}

}  // namespace clonekit
