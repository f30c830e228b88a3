#include "test_images.h"

#include <cerrno>
#include <fstream>
#include <random>
#include <functional>

#include "compression.h"
#include "qcow2_format.h"

namespace clonekit::testing {

void Poke32(std::vector<uint8_t>& b, size_t off, uint32_t v) { qcow2::StoreBE32(&b[off], v); }
void Poke64(std::vector<uint8_t>& b, size_t off, uint64_t v) { qcow2::StoreBE64(&b[off], v); }
uint64_t Peek64(const std::vector<uint8_t>& b, size_t off) { return qcow2::LoadBE64(&b[off]); }

std::vector<uint8_t> BuildQcow2(const TestImageSpec& spec) {
  const uint64_t cs = 1ull << spec.cluster_bits;
  const uint64_t l2_entries = cs / 8;
  const uint64_t clusters = (spec.size + cs - 1) / cs;
  const uint64_t l1_size = (clusters + l2_entries - 1) / l2_entries;
  // cluster 0 header, cluster 1.. L1, then one L2 per L1 entry, then data.
  const uint64_t l1_clusters = std::max<uint64_t>(1, (l1_size * 8 + cs - 1) / cs);
  uint64_t next = (1 + l1_clusters + l1_size) * cs;
  std::vector<uint8_t> img(next, 0);
  std::vector<uint64_t> l2(l1_size * l2_entries, 0);

  for (const TestCluster& c : spec.clusters) {
    std::vector<uint8_t> data(cs, c.byte);
    for (uint64_t i = 0; i < cs; i += 97) data[i] = static_cast<uint8_t>(c.byte + i / 97);
    if (c.fill == Fill::kZero) {
      l2[c.index] = 1;
    } else if (c.fill == Fill::kData) {
      next = (next + cs - 1) & ~(cs - 1);
      img.resize(next + cs);
      std::copy(data.begin(), data.end(), img.begin() + next);
      l2[c.index] = (1ull << 63) | next;
      next += cs;
    } else {
      std::vector<uint8_t> packed(cs);
      size_t n = CompressCluster(spec.zstd ? Codec::kZstd : Codec::kDeflate, data.data(), cs, packed.data(), cs);
      if (n == 0) std::abort();
      img.resize(next + n);
      std::copy(packed.begin(), packed.begin() + n, img.begin() + next);
      uint64_t extra = ((next + n - 1) >> 9) - (next >> 9);
      l2[c.index] = (1ull << 62) | (extra << (62 - (spec.cluster_bits - 8))) | next;
      next += n;
    }
  }
  img.resize((img.size() + 511) & ~size_t(511));
  for (uint64_t i = 0; i < l1_size; i++) {
    uint64_t table = (1 + l1_clusters + i) * cs;
    qcow2::StoreBE64(&img[cs + i * 8], (1ull << 63) | table);
    for (uint64_t j = 0; j < l2_entries; j++) qcow2::StoreBE64(&img[table + j * 8], l2[i * l2_entries + j]);
  }

  uint8_t* h = img.data();
  qcow2::StoreBE32(h, qcow2::kMagic);
  qcow2::StoreBE32(h + 4, spec.version);
  qcow2::StoreBE32(h + 20, spec.cluster_bits);
  qcow2::StoreBE64(h + 24, spec.size);
  qcow2::StoreBE32(h + 36, static_cast<uint32_t>(l1_size));
  qcow2::StoreBE64(h + 40, cs);
  size_t ext = 72;
  if (spec.version == 3) {
    qcow2::StoreBE64(h + 72, spec.zstd ? qcow2::kIncompatCompression : 0);
    qcow2::StoreBE32(h + 96, 4);
    qcow2::StoreBE32(h + 100, 112);
    h[104] = spec.zstd ? 1 : 0;
    ext = 112;
  }
  if (!spec.backing.empty()) {
    qcow2::StoreBE32(h + ext, qcow2::kExtBackingFormat);
    qcow2::StoreBE32(h + ext + 4, static_cast<uint32_t>(spec.backing_format.size()));
    std::copy(spec.backing_format.begin(), spec.backing_format.end(), img.begin() + ext + 8);
    ext += 8 + ((spec.backing_format.size() + 7) & ~size_t(7));
  }
  ext += 8;  // end marker (zeros)
  if (!spec.backing.empty()) {
    qcow2::StoreBE64(h + 8, ext);
    qcow2::StoreBE32(h + 16, static_cast<uint32_t>(spec.backing.size()));
    std::copy(spec.backing.begin(), spec.backing.end(), img.begin() + ext);
  }
  return img;
}

Result<std::unique_ptr<ReadableFile>> MemoryOpener::Open(const std::string& path) {
  auto it = files_.find(path);
  if (it == files_.end()) return Status::FromErrno(path, "cannot open", ENOENT);
  FileIdentity id{1, std::hash<std::string>()(path)};
  return NewMemoryFile(path, it->second, id);
}

std::string WriteTwoLayerChain(const std::string& dir, uint64_t size, unsigned seed) {
  const uint64_t clusters = size >> 16;
  TestImageSpec base;
  base.size = size;
  std::mt19937 rng(seed);
  for (uint64_t i = 0; i < clusters; i += 1 + rng() % 3) {
    base.clusters.push_back({i, i % 5 == 0 ? Fill::kCompressed : Fill::kData, static_cast<uint8_t>(1 + i)});
  }
  TestImageSpec top;
  top.size = size;
  top.backing = "base.qcow2";
  for (uint64_t i = 0; i < clusters; i += 4 + rng() % 5) {
    top.clusters.push_back({i, i % 3 == 0 ? Fill::kZero : Fill::kData, static_cast<uint8_t>(200 - i)});
  }
  for (const auto& [name, spec] : {std::pair{"base.qcow2", &base}, std::pair{"top.qcow2", &top}}) {
    const std::vector<uint8_t> bytes = BuildQcow2(*spec);
    std::ofstream(dir + "/" + name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return dir + "/top.qcow2";
}

}  // namespace clonekit::testing
