#include "qcow2_format.h"

#include <cstring>

namespace clonekit::qcow2 {

namespace {

constexpr size_t kV2HeaderLength = 72;
constexpr size_t kV3HeaderLength = 104;

// Reserved bits of table entries (qcow2.rst): L1 bits 0-8 and 56-62; the
// standard L2 descriptor bits 1-8 and 56-61.
constexpr uint64_t kL1Reserved = 0x7f000000000001ffull;
constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
constexpr uint64_t kL2Compressed = 1ull << 62;
constexpr uint64_t kL2Copied = 1ull << 63;
constexpr uint64_t kL2ZeroFlag = 1ull;
constexpr uint64_t kL2Reserved = 0x3f000000000001feull;
constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ull;

std::string Printable(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; i++) {
    char c = static_cast<char>(p[i]);
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}

// Parses the header extensions between header_length and `end`.
Status DecodeExtensions(const std::string& name, const uint8_t* bytes, uint64_t start,
                        uint64_t end, Header* h) {
  uint64_t offset = start;
  while (offset < end) {
    if (end - offset < 8) {
      return Status::Corruption(name, "header extension at " + Hex(offset) + " is truncated");
    }
    uint32_t type = LoadBE32(bytes + offset);
    uint32_t len = LoadBE32(bytes + offset + 4);
    offset += 8;
    if (type == kExtEnd) break;
    if (len > end - offset) {
      return Status::Corruption(name, "header extension " + Hex(type) + " too large (" +
                                          std::to_string(len) + " bytes)");
    }
    const uint8_t* data = bytes + offset;
    if (type == kExtBackingFormat) {
      if (len >= 16) {
        return Status::Corruption(name, "backing file format name too long (" + std::to_string(len) +
                                            " bytes)");
      }
      h->backing_format.assign(reinterpret_cast<const char*>(data), len);
    } else if (type == kExtDataFile) {
      return Status::NotSupported(name, "image uses an external data file ('" +
                                            Printable(data, std::min<uint32_t>(len, 64)) +
                                            "'): refused, it can expose host files");
    }
    offset += (uint64_t(len) + 7) & ~uint64_t(7);
  }
  return Status::OK();
}

Status DecodeBackingName(const std::string& name, const uint8_t* bytes, size_t n,
                         uint64_t file_size, Header* h) {
  if (h->backing_file_offset == 0) return Status::OK();
  if (h->backing_file_offset > h->cluster_size()) {
    return Status::Corruption(name, "invalid backing file offset " + Hex(h->backing_file_offset) +
                                        " (beyond the first cluster)");
  }
  if (h->backing_file_size == 0) {
    return Status::Corruption(name, "backing file name is empty");
  }
  if (h->backing_file_size > kMaxBackingNameLength ||
      h->backing_file_size > h->cluster_size() - h->backing_file_offset) {
    return Status::Corruption(name, "backing file name too long (" +
                                        std::to_string(h->backing_file_size) + " bytes)");
  }
  uint64_t end = h->backing_file_offset + h->backing_file_size;
  if (end > file_size || end > n) {
    return Status::Corruption(name, "backing file name at " + Hex(h->backing_file_offset) +
                                        " is past end of file (size " + Hex(file_size) + ")");
  }
  const char* p = reinterpret_cast<const char*>(bytes + h->backing_file_offset);
  if (std::memchr(p, 0, h->backing_file_size) != nullptr) {
    return Status::Corruption(name, "backing file name contains a NUL byte");
  }
  h->backing_file.assign(p, h->backing_file_size);
  return Status::OK();
}

}  // namespace

bool L1EntriesFor(uint64_t size, uint32_t cluster_bits, uint64_t l2_entries, uint64_t* entries) {
  uint64_t cluster_size = 1ull << cluster_bits;
  if (size > UINT64_MAX - cluster_size) return false;
  uint64_t clusters = (size + cluster_size - 1) >> cluster_bits;
  *entries = (clusters + l2_entries - 1) / l2_entries;
  return true;
}

Result<Header> DecodeHeader(const std::string& name, const uint8_t* bytes, size_t n,
                            uint64_t file_size) {
  if (n < 8) {
    return Status::Corruption(name, "not a qcow2 image: truncated header (" + std::to_string(n) +
                                        " bytes)");
  }
  if (LoadBE32(bytes) != kMagic) return Status::Corruption(name, "not a qcow2 image (bad magic)");

  Header h;
  h.version = LoadBE32(bytes + 4);
  if (h.version != 2 && h.version != 3) {
    return Status::NotSupported(name, "unsupported qcow2 version " + std::to_string(h.version));
  }
  size_t fixed = h.version == 2 ? kV2HeaderLength : kV3HeaderLength;
  if (n < fixed) {
    return Status::Corruption(name, "truncated header (" + std::to_string(n) + " bytes, need " +
                                        std::to_string(fixed) + ")");
  }
  h.backing_file_offset = LoadBE64(bytes + 8);
  h.backing_file_size = LoadBE32(bytes + 16);
  h.cluster_bits = LoadBE32(bytes + 20);
  h.size = LoadBE64(bytes + 24);
  h.crypt_method = LoadBE32(bytes + 32);
  h.l1_size = LoadBE32(bytes + 36);
  h.l1_table_offset = LoadBE64(bytes + 40);
  h.refcount_table_offset = LoadBE64(bytes + 48);
  h.refcount_table_clusters = LoadBE32(bytes + 56);
  h.nb_snapshots = LoadBE32(bytes + 60);
  h.snapshots_offset = LoadBE64(bytes + 64);
  if (h.version == 3) {
    h.incompatible_features = LoadBE64(bytes + 72);
    h.compatible_features = LoadBE64(bytes + 80);
    h.autoclear_features = LoadBE64(bytes + 88);
    h.refcount_order = LoadBE32(bytes + 96);
    h.header_length = LoadBE32(bytes + 100);
  }

  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return Status::NotSupported(name, "unsupported cluster size: cluster_bits " +
                                          std::to_string(h.cluster_bits) + " (must be 9..21)");
  }
  const uint64_t cs = h.cluster_size();
  if (h.version == 3) {
    if (h.header_length < kV3HeaderLength) {
      return Status::Corruption(name, "header_length " + std::to_string(h.header_length) +
                                          " is too small (at least 104)");
    }
    if (h.header_length > cs) {
      return Status::Corruption(name, "header_length " + std::to_string(h.header_length) +
                                          " exceeds the cluster size " + std::to_string(cs));
    }
    if (h.header_length > n) {
      return Status::Corruption(name, "header_length " + std::to_string(h.header_length) +
                                          " is past end of file (size " + Hex(file_size) + ")");
    }
  }

  uint64_t unknown = h.incompatible_features & ~kIncompatKnown;
  if (unknown) {
    return Status::NotSupported(name, "unknown incompatible feature bits " + Hex(unknown));
  }
  if (h.incompatible_features & kIncompatCorrupt) {
    return Status::Corruption(name, "image is marked corrupt (run 'qemu-img check -r all')");
  }
  if (h.incompatible_features & kIncompatDataFile) {
    return Status::NotSupported(name, "image uses an external data file: refused, it can expose host files");
  }
  if (h.crypt_method != 0) {
    return Status::NotSupported(name, "encrypted images are not supported (crypt_method " +
                                          std::to_string(h.crypt_method) + ")");
  }
  if (h.refcount_order > 6) {
    return Status::Corruption(name, "refcount_order " + std::to_string(h.refcount_order) +
                                        " is too large (at most 6)");
  }
  if (h.header_length > 104) {
    uint8_t type = bytes[104];
    if (type > 1) {
      return Status::NotSupported(name, "unknown compression type " + std::to_string(type));
    }
    h.compression = static_cast<Compression>(type);
  }
  bool flag = h.incompatible_features & kIncompatCompression;
  if (flag != (h.compression != Compression::kDeflate)) {
    return Status::Corruption(name, "compression type field and incompatible bit 3 disagree");
  }
  if (h.extended_l2() && h.cluster_bits < 14) {
    return Status::Corruption(name, "extended L2 entries need clusters of at least 16 KiB (cluster_bits " +
                                        std::to_string(h.cluster_bits) + ")");
  }

  // Extensions end where the backing name starts, or at the end of cluster 0.
  uint64_t ext_end = std::min<uint64_t>(cs, n);
  if (h.backing_file_offset != 0) ext_end = std::min<uint64_t>(ext_end, h.backing_file_offset);
  if (ext_end > h.header_length) {
    CLONEKIT_RETURN_IF_ERROR(DecodeExtensions(name, bytes, h.header_length, ext_end, &h));
  }
  CLONEKIT_RETURN_IF_ERROR(DecodeBackingName(name, bytes, n, file_size, &h));

  // The active L1 table: bounded, aligned, inside the file, big enough.
  uint64_t l1_bytes = uint64_t(h.l1_size) * 8;
  if (l1_bytes > kMaxL1Bytes) {
    return Status::Corruption(name, "L1 table too large (" + std::to_string(h.l1_size) + " entries)");
  }
  if (h.l1_size > 0) {
    if (h.l1_table_offset & (cs - 1)) {
      return Status::Corruption(name, "L1 table offset " + Hex(h.l1_table_offset) + " is not cluster aligned");
    }
    if (h.l1_table_offset > file_size || l1_bytes > file_size - h.l1_table_offset) {
      return Status::Corruption(name, "L1 table at " + Hex(h.l1_table_offset) + " (" +
                                          std::to_string(h.l1_size) +
                                          " entries) is past end of file (size " + Hex(file_size) + ")");
    }
  }
  uint64_t needed = 0;
  if (h.size > (1ull << 63) || !L1EntriesFor(h.size, h.cluster_bits, h.l2_entries(), &needed)) {
    return Status::Corruption(name, "virtual size " + std::to_string(h.size) + " is too large");
  }
  if (needed > h.l1_size) {
    return Status::Corruption(name, "L1 table is too small (" + std::to_string(h.l1_size) +
                                        " entries; virtual size " + std::to_string(h.size) + " needs " +
                                        std::to_string(needed) + ")");
  }

  // Tables we never read for a collapse; still checked as qemu does.
  if (uint64_t(h.refcount_table_clusters) * cs > kMaxRefcountTableBytes) {
    return Status::Corruption(name, "refcount table too large (" +
                                        std::to_string(h.refcount_table_clusters) + " clusters)");
  }
  if (h.refcount_table_offset & (cs - 1)) {
    return Status::Corruption(name, "refcount table offset " + Hex(h.refcount_table_offset) +
                                        " is not cluster aligned");
  }
  if (h.refcount_table_offset > file_size) {
    return Status::Corruption(name, "refcount table at " + Hex(h.refcount_table_offset) +
                                        " is past end of file (size " + Hex(file_size) + ")");
  }
  if (h.nb_snapshots > kMaxSnapshots) {
    return Status::Corruption(name, "too many internal snapshots (" + std::to_string(h.nb_snapshots) + ")");
  }
  if (h.nb_snapshots > 0 &&
      ((h.snapshots_offset & (cs - 1)) || h.snapshots_offset >= file_size)) {
    return Status::Corruption(name, "snapshot table offset " + Hex(h.snapshots_offset) + " is invalid");
  }
  return h;
}

std::string DecodeL1Entry(uint64_t entry, uint32_t cluster_bits, uint64_t* l2_offset) {
  if (entry & kL1Reserved) return "reserved bits set in L1 entry " + Hex(entry);
  *l2_offset = entry & kL1OffsetMask;
  if (*l2_offset & ((1ull << cluster_bits) - 1)) return "L2 table offset " + Hex(*l2_offset) + " unaligned";
  return "";
}

std::string DecodeL2Entry(uint64_t entry, const Geometry& g, L2Entry* out) {
  *out = L2Entry();
  if (entry & kL2Compressed) {
    uint32_t x = 62 - (g.cluster_bits - 8);
    uint64_t offset = entry & ((1ull << x) - 1);
    uint64_t extra = (entry >> x) & ((1ull << (g.cluster_bits - 8)) - 1);
    if (offset > kMaxHostOffset) return "compressed cluster offset " + Hex(offset) + " is too large";
    out->kind = RunKind::kCompressed;
    out->host.offset = offset;
    out->host.compressed_size = static_cast<uint32_t>((extra + 1) * 512 - (offset & 511));
    return "";
  }
  if (entry & kL2Reserved) return "reserved bits set in L2 entry " + Hex(entry);
  uint64_t offset = entry & kL2OffsetMask;
  if (offset & ((1ull << g.cluster_bits) - 1)) {
    return "cluster offset " + Hex(offset) + " unaligned";
  }
  bool zero_flag = entry & kL2ZeroFlag;
  if (zero_flag && g.version < 3) return "zero cluster entry found in pre-v3 image";
  if (zero_flag && g.extended_l2) return "zero flag set in an extended L2 entry";
  out->host.offset = offset;
  out->host.valid = offset != 0;
  if (offset == 0 && (entry & kL2Copied) && !zero_flag) {
    return "cluster offset 0 with the COPIED flag (only valid with an external data file)";
  }
  if (zero_flag) {
    out->kind = RunKind::kZero;
  } else {
    out->kind = offset != 0 ? RunKind::kData : RunKind::kUnallocated;
  }
  return "";
}

std::string SubclusterKind(const L2Entry& cluster, uint64_t bitmap, unsigned index,
                           RunKind* kind) {
  if (cluster.kind == RunKind::kCompressed) {
    if (bitmap != 0) return "compressed cluster with a non-zero subcluster bitmap";
    *kind = RunKind::kCompressed;
    return "";
  }
  bool alloc = (bitmap >> index) & 1;
  bool zero = (bitmap >> (32 + index)) & 1;
  if (alloc && zero) return "subcluster " + std::to_string(index) + " is both allocated and zero";
  if (zero) {
    *kind = RunKind::kZero;
  } else if (alloc) {
    if (!cluster.host.valid) return "subcluster " + std::to_string(index) + " allocated in an unallocated cluster";
    *kind = RunKind::kData;
  } else {
    *kind = RunKind::kUnallocated;
  }
  return "";
}

}  // namespace clonekit::qcow2
