// The qcow2 on-disk format: header and table-entry decoding (internal).
//
// Pure functions over bytes, so they can be unit-tested and fuzzed without
// files. Every check that qemu makes at open time (block/qcow2.c
// qcow2_do_open) is made here before any number from the header sizes an
// allocation; see docs/qcow2.rst in qemu for the layout.
#ifndef CLONEKIT_STORAGE_QCOW2_FORMAT_H_
#define CLONEKIT_STORAGE_QCOW2_FORMAT_H_

#include <cstdint>
#include <string>

#include "clonekit/run_kind.h"
#include "clonekit/status.h"

namespace clonekit::qcow2 {

constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr uint32_t kMinClusterBits = 9;
constexpr uint32_t kMaxClusterBits = 21;
constexpr uint64_t kMaxL1Bytes = 32ull << 20;        // qemu QCOW_MAX_L1_SIZE
constexpr uint64_t kMaxRefcountTableBytes = 8ull << 20;
constexpr uint32_t kMaxSnapshots = 65536;
constexpr uint32_t kMaxBackingNameLength = 1023;
constexpr uint64_t kMaxHostOffset = (1ull << 56) - 1;

// Incompatible feature bits.
constexpr uint64_t kIncompatDirty = 1ull << 0;
constexpr uint64_t kIncompatCorrupt = 1ull << 1;
constexpr uint64_t kIncompatDataFile = 1ull << 2;
constexpr uint64_t kIncompatCompression = 1ull << 3;
constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
constexpr uint64_t kIncompatKnown = (1ull << 5) - 1;
constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;

// Header extension types.
constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtFeatureTable = 0x6803f857;
constexpr uint32_t kExtDataFile = 0x44415441;

enum class Compression : uint8_t { kDeflate = 0, kZstd = 1 };

struct Header {
  uint32_t version = 0;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 0;
  uint64_t size = 0;  // virtual disk size
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 72;
  Compression compression = Compression::kDeflate;

  // From the extensions and the backing name area.
  std::string backing_file;
  std::string backing_format;

  uint64_t cluster_size() const { return 1ull << cluster_bits; }
  bool extended_l2() const { return incompatible_features & kIncompatExtendedL2; }
  // Bytes per L2 entry: 8, or 16 with extended L2 (entry + subcluster bitmap).
  uint32_t l2_entry_bytes() const { return extended_l2() ? 16 : 8; }
  uint64_t l2_entries() const { return cluster_size() / l2_entry_bytes(); }
  uint64_t subcluster_size() const { return extended_l2() ? cluster_size() / 32 : cluster_size(); }
};

// Decodes and validates a header. `bytes` holds the start of the file (at
// least min(file_size, 2 MiB) bytes, or all of it if shorter); file_size is
// the whole file's size, used to check that tables lie inside the file.
Result<Header> DecodeHeader(const std::string& name, const uint8_t* bytes, size_t n,
                            uint64_t file_size);

// How many L1 entries a virtual size needs; fails on arithmetic overflow.
bool L1EntriesFor(uint64_t size, uint32_t cluster_bits, uint64_t l2_entries, uint64_t* entries);

// What one (sub)cluster of a layer holds: kUnallocated reads from the
// backing file, kZero never does. host.offset is cluster-aligned for kData,
// a byte offset for kCompressed (cluster_start is the reader's to fill).
struct L2Entry {
  RunKind kind = RunKind::kUnallocated;
  HostLocation host;
};

struct Geometry {
  uint32_t cluster_bits = 16;
  uint32_t version = 3;
  bool extended_l2 = false;
};

// Decodes the 64-bit standard L2 descriptor into *out (for extended L2, the
// whole-cluster part; the subcluster bitmap is applied with SubclusterKind).
// Returns a message (empty on success) naming what is wrong; the caller adds
// the file and table position.
std::string DecodeL2Entry(uint64_t entry, const Geometry& g, L2Entry* out);

// For extended L2: the kind of subcluster `index` (0..31) given the decoded
// entry and the bitmap. Returns a message on an invalid combination.
std::string SubclusterKind(const L2Entry& cluster, uint64_t bitmap, unsigned index,
                           RunKind* kind);

// L1 entry -> L2 table offset (0 = none). Message on reserved bits or misalignment.
std::string DecodeL1Entry(uint64_t entry, uint32_t cluster_bits, uint64_t* l2_offset);

inline uint64_t LoadBE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}
inline uint32_t LoadBE32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
inline void StoreBE64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void StoreBE32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void StoreBE16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

}  // namespace clonekit::qcow2

#endif  // CLONEKIT_STORAGE_QCOW2_FORMAT_H_
