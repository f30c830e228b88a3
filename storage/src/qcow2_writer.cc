// The qcow2 writer lays the file out front to back:
//   cluster 0: header | L1 table | data and L2 tables as they come |
//   refcount blocks | refcount table.
// Every host cluster it allocates is referenced exactly once, except the
// clusters holding compressed streams, which count one reference per stream
// touching them, so `qemu-img check` finds no leaks.
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "compression.h"
#include "image_writer.h"
#include "qcow2_format.h"

namespace clonekit {

namespace {

using qcow2::StoreBE16;
using qcow2::StoreBE32;
using qcow2::StoreBE64;

constexpr uint32_t kClusterBits = 16;
constexpr uint64_t kClusterSize = 1ull << kClusterBits;
constexpr uint64_t kL2Entries = kClusterSize / 8;
constexpr uint32_t kRefcountOrder = 4;                     // 16-bit refcounts
constexpr uint64_t kRefcountsPerBlock = kClusterSize / 2;  // entries in one refcount block
constexpr uint32_t kHeaderLength = 112;                    // v3 + compression type, padded
constexpr uint64_t kCopied = 1ull << 63;
constexpr uint64_t kCompressedFlag = 1ull << 62;

class Qcow2Writer final : public ImageWriter {
  // A finished cluster waiting in the batch.
  struct Pending {
    uint64_t index = 0;
    std::vector<uint8_t> data, packed;
    size_t packed_size = 0;
    bool zero = false;
  };

 public:
  Qcow2Writer(int fd, std::string name, uint64_t virtual_size, OutputCompression compression, uint64_t l1_size,
              unsigned threads)
      : fd_(fd), name_(std::move(name)), virtual_size_(virtual_size), compression_(compression),
        l1_(l1_size, 0), threads_(threads), cluster_(kClusterSize) {
    // Clusters are compressed a batch at a time, on all threads.
    batch_.resize(compression_ == OutputCompression::kNone ? 1 : threads_ * 8);
    for (Pending& p : batch_) {
      p.data.resize(kClusterSize);
      p.packed.resize(kClusterSize);
    }
    uint64_t l1_clusters = (l1_size * 8 + kClusterSize - 1) / kClusterSize;
    for (uint64_t i = 0; i < 1 + l1_clusters; i++) AllocateCluster();
  }

  Status Write(uint64_t offset, const uint8_t* data, size_t length) override {
    while (length > 0) {
      uint64_t index = offset >> kClusterBits;
      if (index != cluster_index_) {
        CLONEKIT_RETURN_IF_ERROR(FlushCluster());
        cluster_index_ = index;
        cluster_.resize(kClusterSize);
        std::fill(cluster_.begin(), cluster_.end(), 0);
      }
      size_t in_cluster = offset & (kClusterSize - 1);
      size_t n = std::min<size_t>(length, kClusterSize - in_cluster);
      std::copy(data, data + n, cluster_.begin() + in_cluster);
      cluster_dirty_ = true;
      offset += n;
      data += n;
      length -= n;
    }
    return Status::OK();
  }

  Status Finish() override {
    CLONEKIT_RETURN_IF_ERROR(FlushCluster());
    CLONEKIT_RETURN_IF_ERROR(FlushBatch());
    CLONEKIT_RETURN_IF_ERROR(FlushL2());
    CLONEKIT_RETURN_IF_ERROR(WriteL1());
    uint64_t table_offset = 0, table_clusters = 0;
    CLONEKIT_RETURN_IF_ERROR(WriteRefcounts(&table_offset, &table_clusters));
    return WriteHeader(table_offset, table_clusters);
  }

 private:
  uint64_t AllocateCluster() {
    end_ = (end_ + kClusterSize - 1) & ~(kClusterSize - 1);
    uint64_t offset = end_;
    end_ += kClusterSize;
    Reference(offset, kClusterSize);
    return offset;
  }

  uint64_t AllocateBytes(uint64_t n) {
    uint64_t offset = end_;
    end_ += n;
    Reference(offset, n);
    return offset;
  }

  void Reference(uint64_t offset, uint64_t n) {
    uint64_t last = (offset + n - 1) >> kClusterBits;
    if (refcounts_.size() <= last) refcounts_.resize(last + 1, 0);
    for (uint64_t c = offset >> kClusterBits; c <= last; c++) refcounts_[c]++;
  }

  // Queues the finished cluster; a full batch is compressed and written.
  Status FlushCluster() {
    if (!cluster_dirty_) return Status::OK();
    cluster_dirty_ = false;
    Pending& p = batch_[batched_++];
    p.index = cluster_index_;
    p.data.swap(cluster_);
    return batched_ == batch_.size() ? FlushBatch() : Status::OK();
  }

  // Zero-checks and compresses the batch in parallel, then allocates and
  // writes it in guest order, so the file layout stays deterministic.
  Status FlushBatch() {
    if (batched_ == 0) return Status::OK();
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < batched_;) {
        Pending& p = batch_[i];
        p.zero = IsZero(p.data.data(), kClusterSize);
        p.packed_size = 0;
        if (!p.zero && compression_ != OutputCompression::kNone) {
          Codec codec = compression_ == OutputCompression::kZstd ? Codec::kZstd : Codec::kDeflate;
          // Only worth it when at least one 512-byte sector is saved.
          p.packed_size = CompressCluster(codec, p.data.data(), kClusterSize, p.packed.data(), kClusterSize - 512);
        }
      }
    };
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < threads_ && t < batched_; t++) helpers.emplace_back(work);
    work();
    for (auto& h : helpers) h.join();
    for (size_t i = 0; i < batched_; i++) CLONEKIT_RETURN_IF_ERROR(Store(batch_[i]));
    batched_ = 0;
    return Status::OK();
  }

  Status Store(const Pending& p) {
    if (p.zero) return Status::OK();  // stays unallocated
    uint64_t l1_index = p.index / kL2Entries;
    if (l1_index != l2_index_) {
      CLONEKIT_RETURN_IF_ERROR(FlushL2());
      l2_index_ = l1_index;
      l2_.assign(kL2Entries, 0);
    }
    uint64_t entry = 0;
    if (p.packed_size > 0) {
      uint64_t offset = AllocateBytes(p.packed_size);
      CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, p.packed.data(), p.packed_size, offset));
      uint64_t extra_sectors = ((offset + p.packed_size - 1) >> 9) - (offset >> 9);
      entry = kCompressedFlag | (extra_sectors << (62 - (kClusterBits - 8))) | offset;
    } else {
      uint64_t offset = AllocateCluster();
      CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, p.data.data(), kClusterSize, offset));
      entry = kCopied | offset;
    }
    l2_[p.index % kL2Entries] = entry;
    return Status::OK();
  }

  Status FlushL2() {
    if (l2_index_ == UINT64_MAX) return Status::OK();
    std::vector<uint8_t> table(kClusterSize);
    for (uint64_t i = 0; i < kL2Entries; i++) StoreBE64(table.data() + i * 8, l2_[i]);
    uint64_t offset = AllocateCluster();
    CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, table.data(), table.size(), offset));
    l1_[l2_index_] = kCopied | offset;
    l2_index_ = UINT64_MAX;
    return Status::OK();
  }

  Status WriteL1() {
    if (l1_.empty()) return Status::OK();
    std::vector<uint8_t> table(l1_.size() * 8);
    for (size_t i = 0; i < l1_.size(); i++) StoreBE64(table.data() + i * 8, l1_[i]);
    return WriteFully(fd_, name_, table.data(), table.size(), kClusterSize);
  }

  // Places the refcount blocks and table after everything else. They count
  // themselves, so iterate until their number stops growing.
  Status WriteRefcounts(uint64_t* table_offset, uint64_t* table_clusters) {
    uint64_t data_clusters = (end_ + kClusterSize - 1) >> kClusterBits;
    uint64_t blocks = 0, tables = 0;
    while (true) {
      uint64_t total = data_clusters + blocks + tables;
      uint64_t need_blocks = (total + kRefcountsPerBlock - 1) / kRefcountsPerBlock;
      uint64_t need_tables = (need_blocks * 8 + kClusterSize - 1) / kClusterSize;
      if (need_blocks == blocks && need_tables == tables) break;
      blocks = need_blocks;
      tables = need_tables;
    }
    end_ = data_clusters << kClusterBits;
    uint64_t first_block = AllocateCluster();
    for (uint64_t i = 1; i < blocks; i++) AllocateCluster();
    *table_offset = AllocateCluster();
    for (uint64_t i = 1; i < tables; i++) AllocateCluster();
    *table_clusters = tables;

    std::vector<uint8_t> table(tables * kClusterSize, 0);
    std::vector<uint8_t> block(kClusterSize);
    for (uint64_t b = 0; b < blocks; b++) {
      std::fill(block.begin(), block.end(), 0);
      for (uint64_t i = 0; i < kRefcountsPerBlock; i++) {
        uint64_t cluster = b * kRefcountsPerBlock + i;
        if (cluster < refcounts_.size()) StoreBE16(block.data() + i * 2, refcounts_[cluster]);
      }
      uint64_t offset = first_block + b * kClusterSize;
      CLONEKIT_RETURN_IF_ERROR(WriteFully(fd_, name_, block.data(), block.size(), offset));
      StoreBE64(table.data() + b * 8, offset);
    }
    return WriteFully(fd_, name_, table.data(), table.size(), *table_offset);
  }

  Status WriteHeader(uint64_t refcount_table_offset, uint64_t refcount_table_clusters) {
    std::vector<uint8_t> h(kHeaderLength + 8, 0);  // + end-of-extensions marker
    bool zstd = compression_ == OutputCompression::kZstd;
    StoreBE32(&h[0], qcow2::kMagic);
    StoreBE32(&h[4], 3);
    StoreBE32(&h[20], kClusterBits);
    StoreBE64(&h[24], virtual_size_);
    StoreBE32(&h[36], static_cast<uint32_t>(l1_.size()));
    StoreBE64(&h[40], l1_.empty() ? 0 : kClusterSize);
    StoreBE64(&h[48], refcount_table_offset);
    StoreBE32(&h[56], static_cast<uint32_t>(refcount_table_clusters));
    StoreBE64(&h[72], zstd ? qcow2::kIncompatCompression : 0);
    StoreBE32(&h[96], kRefcountOrder);
    StoreBE32(&h[100], kHeaderLength);
    h[104] = zstd ? 1 : 0;
    return WriteFully(fd_, name_, h.data(), h.size(), 0);
  }

  int fd_;
  std::string name_;
  uint64_t virtual_size_;
  OutputCompression compression_;
  std::vector<uint64_t> l1_;
  std::vector<uint64_t> l2_;
  uint64_t l2_index_ = UINT64_MAX;
  unsigned threads_;
  std::vector<Pending> batch_;
  size_t batched_ = 0;
  std::vector<uint8_t> cluster_;
  uint64_t cluster_index_ = UINT64_MAX;
  bool cluster_dirty_ = false;
  uint64_t end_ = 0;
  std::vector<uint16_t> refcounts_;
};

}  // namespace

Result<std::unique_ptr<ImageWriter>> NewQcow2Writer(int fd, const std::string& name, uint64_t virtual_size,
                                                    OutputCompression compression, unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  uint64_t l1_size = 0;
  if (!qcow2::L1EntriesFor(virtual_size, kClusterBits, kL2Entries, &l1_size) ||
      l1_size * 8 > qcow2::kMaxL1Bytes) {
    return Status::InvalidArgument(name + ": virtual size " + std::to_string(virtual_size) +
                                   " is too large for a qcow2 image with 64 KiB clusters");
  }
  if (ftruncate(fd, 0) < 0) return Status::FromErrno(name, "cannot truncate output", errno);
  return std::unique_ptr<ImageWriter>(new Qcow2Writer(fd, name, virtual_size, compression, l1_size, threads));
}

}  // namespace clonekit
