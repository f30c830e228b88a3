#include "qcow2_image.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "compression.h"

namespace clonekit {


namespace {

RunKind ToRunKind(RunKind kind) {
  switch (kind) {
    case RunKind::kZero: return RunKind::kZero;
    case RunKind::kData: return RunKind::kData;
    case RunKind::kCompressed: return RunKind::kCompressed;
    default: return RunKind::kUnallocated;
  }
}

// Whether `next` continues `run` (same kind, host bytes contiguous).
bool Continues(const LayerRun& run, const LayerRun& next) {
  if (run.kind != next.kind || run.host.valid != next.host.valid) return false;
  if (run.kind == RunKind::kCompressed) return false;
  return !run.host.valid || run.host.offset + run.length == next.host.offset;
}

}  // namespace

namespace {
std::atomic<uint64_t> g_next_image_id{1};
}  // namespace

Qcow2Image::Qcow2Image(std::unique_ptr<ReadableFile> file, qcow2::Header header)
    : Image(std::move(file)), header_(std::move(header)), id_(g_next_image_id++) {
  geometry_ = {header_.cluster_bits, header_.version, header_.extended_l2()};
  info_.format = ImageFormat::kQcow2;
  info_.virtual_size = header_.size;
  info_.cluster_size = header_.cluster_size();
  info_.version = header_.version;
  info_.refcount_bits = 1u << header_.refcount_order;
  info_.compression_zstd = header_.compression == qcow2::Compression::kZstd;
  info_.lazy_refcounts = header_.compatible_features & qcow2::kCompatLazyRefcounts;
  info_.dirty = header_.incompatible_features & qcow2::kIncompatDirty;
  info_.corrupt = header_.incompatible_features & qcow2::kIncompatCorrupt;
  info_.extended_l2 = header_.extended_l2();
  info_.internal_snapshots = header_.nb_snapshots;
  info_.backing_file = header_.backing_file;
  info_.backing_format = header_.backing_format;
}

Result<std::unique_ptr<Image>> Qcow2Image::Open(std::unique_ptr<ReadableFile> file) {
  // The header, its extensions and the backing name all live in cluster 0
  // (up to 2 MiB). They nearly always fit in the first 4 KiB, so read that
  // much first, and the whole cluster only if decoding needs more.
  constexpr size_t kFirstRead = 4 << 10;
  const size_t whole = static_cast<size_t>(std::min<uint64_t>(file->size(), 1u << qcow2::kMaxClusterBits));
  size_t want = std::min(whole, kFirstRead);
  std::vector<uint8_t> head;
  Result<qcow2::Header> header = Status::Corruption(file->name(), "unread");
  while (true) {
    head.resize(want);
    size_t got = 0;
    CLONEKIT_RETURN_IF_ERROR(file->ReadAt(0, head.data(), want, &got));
    header = qcow2::DecodeHeader(file->name(), head.data(), got, file->size());
    if (header.ok() || want >= whole || got < want) break;
    // Decoding may have failed only for lack of bytes: retry with the
    // largest possible cluster 0 (the result is then final).
    want = whole;
  }
  if (!header.ok()) return header.status();
  std::unique_ptr<Qcow2Image> image(new Qcow2Image(std::move(file), std::move(header).value()));
  CLONEKIT_RETURN_IF_ERROR(image->LoadL1());
  return std::unique_ptr<Image>(std::move(image));
}

Status Qcow2Image::LoadL1() {
  // Size and position were checked against the file by DecodeHeader.
  std::vector<uint8_t> raw(uint64_t(header_.l1_size) * 8);
  size_t got = 0;
  CLONEKIT_RETURN_IF_ERROR(file_->ReadAt(header_.l1_table_offset, raw.data(), raw.size(), &got));
  if (got != raw.size()) return Status::Corruption(name(), "L1 table is truncated");
  l1_.resize(header_.l1_size);
  for (size_t i = 0; i < l1_.size(); i++) l1_[i] = qcow2::LoadBE64(raw.data() + i * 8);
  return Status::OK();
}

std::string Qcow2Image::Where(uint64_t guest_offset) const {
  uint64_t cluster = guest_offset >> header_.cluster_bits;
  return "(guest offset " + Hex(guest_offset) + ", L1 index " +
         std::to_string(cluster / header_.l2_entries()) + ", L2 index " +
         std::to_string(cluster % header_.l2_entries()) + ")";
}

Status Qcow2Image::LoadL2(uint64_t l1_index, L2Cache::Table* table) const {
  uint64_t l2_offset = 0;
  std::string err = qcow2::DecodeL1Entry(l1_[l1_index], header_.cluster_bits, &l2_offset);
  if (!err.empty()) return Status::Corruption(name(), err + " (L1 index " + std::to_string(l1_index) + ")");
  *table = nullptr;
  if (l2_offset == 0) return Status::OK();
  // A walk asks one layer about many runs in a row, nearly always inside
  // the same table: a per-thread memo of the last table answers those
  // without touching the shared cache (no lock, no hash lookup). It may
  // keep one evicted table alive per thread; ids are never reused, so a
  // memo of a closed image can never match a new one.
  struct Memo {
    uint64_t image_id = 0;
    uint64_t l1_index = 0;
    L2Cache::Table table;
  };
  thread_local Memo memo;
  if (memo.image_id == id_ && memo.l1_index == l1_index) {
    *table = memo.table;
    return Status::OK();
  }
  *table = l2_cache_.Find(l1_index);
  if (*table) {
    memo = {id_, l1_index, *table};
    return Status::OK();
  }
  uint64_t cs = header_.cluster_size();
  if (l2_offset > file_->size() || cs > file_->size() - l2_offset) {
    return Status::Corruption(name(), "L2 table at " + Hex(l2_offset) + " (L1 index " +
                                          std::to_string(l1_index) + ") is past end of file (size " +
                                          Hex(file_->size()) + ")");
  }
  // Read outside any lock; two threads missing at once both read, and the
  // cache keeps the first.
  std::shared_ptr<uint8_t> fresh = TableArena::Get(arena_, cs);
  if (!fresh) return Status::IOError(name(), "no memory for an L2 table");
  size_t got = 0;
  CLONEKIT_RETURN_IF_ERROR(file_->ReadAt(l2_offset, fresh.get(), cs, &got));
  if (got != cs) return Status::Corruption(name(), "L2 table at " + Hex(l2_offset) + " is truncated");
  *table = l2_cache_.Insert(l1_index, std::move(fresh));
  memo = {id_, l1_index, *table};
  return Status::OK();
}

void Qcow2Image::SetMetadataCacheBytes(uint64_t bytes) {
  l2_cache_.SetCapacity(static_cast<size_t>(bytes / header_.cluster_size()));
}

Status Qcow2Image::UnitAt(const uint8_t* l2, uint64_t offset, LayerRun* unit, uint64_t* unit_end) const {
  const uint64_t cs = header_.cluster_size();
  const uint64_t cluster = offset >> header_.cluster_bits;
  const uint64_t index = cluster % header_.l2_entries();
  const uint8_t* p = l2 + index * header_.l2_entry_bytes();
  uint64_t cluster_start = cluster << header_.cluster_bits;

  qcow2::L2Entry entry;
  std::string err = qcow2::DecodeL2Entry(qcow2::LoadBE64(p), geometry_, &entry);
  RunKind kind = entry.kind;
  *unit_end = cluster_start + cs;
  if (err.empty() && header_.extended_l2()) {
    unsigned sub = static_cast<unsigned>((offset - cluster_start) / header_.subcluster_size());
    err = qcow2::SubclusterKind(entry, qcow2::LoadBE64(p + 8), sub, &kind);
    if (kind != RunKind::kCompressed) {
      *unit_end = cluster_start + (sub + 1) * header_.subcluster_size();
    }
  }
  if (!err.empty()) return Status::Corruption(name(), err + " " + Where(offset));

  *unit = LayerRun();
  unit->kind = ToRunKind(kind);
  unit->length = *unit_end - offset;
  if (kind == RunKind::kCompressed) {
    if (entry.host.offset >= file_->size()) {
      return Status::Corruption(name(), "compressed cluster at " + Hex(entry.host.offset) + " " +
                                            Where(offset) + " is past end of file (size " +
                                            Hex(file_->size()) + ")");
    }
    if (entry.host.offset < cs) {
      return Status::Corruption(name(), "compressed cluster at " + Hex(entry.host.offset) + " " +
                                            Where(offset) + " points into the image header");
    }
    unit->host.offset = entry.host.offset;
    unit->host.compressed_size = entry.host.compressed_size;
    unit->host.cluster_start = cluster_start;
    return Status::OK();
  }
  if (entry.host.valid && (kind == RunKind::kData || kind == RunKind::kZero)) {
    if (kind == RunKind::kData && entry.host.offset >= file_->size()) {
      return Status::Corruption(name(), "data cluster at " + Hex(entry.host.offset) + " " +
                                            Where(offset) + " is past end of file (size " +
                                            Hex(file_->size()) + ")");
    }
    unit->host.valid = true;
    unit->host.offset = entry.host.offset + (offset - cluster_start);
    // A cluster cut short by the end of the file: the missing tail reads as
    // zeros (qemu pads such reads), so describe it as zeros, not data.
    const uint64_t file_size = file_->size();
    if (kind == RunKind::kData && unit->host.offset >= file_size) {
      unit->kind = RunKind::kZero;
    } else if (kind == RunKind::kData && unit->length > file_size - unit->host.offset) {
      unit->length = file_size - unit->host.offset;
      *unit_end = offset + unit->length;
    }
  }
  return Status::OK();
}

namespace {

// The first of entries [first, last) of an L2 table that is not all zero
// bytes, or `last`. kWords is the entry size in 64-bit words (1, or 2 with
// extended L2). A fixed word count lets the compiler OR whole blocks of
// entries in vector registers: a map at depth 256 scans 4 M entries.
template <size_t kWords>
uint64_t FirstNonEmptyEntry(const uint8_t* l2, uint64_t first, uint64_t last) {
  constexpr uint64_t kBlock = 64 / kWords;  // entries per 512-byte block
  uint64_t i = first;
  // One by one up to a block boundary, then whole blocks, then one by one.
  auto entry_empty = [&](uint64_t e) {
    uint64_t w[kWords];
    std::memcpy(w, l2 + e * kWords * 8, sizeof(w));
    uint64_t any = 0;
    for (size_t k = 0; k < kWords; k++) any |= w[k];
    return any == 0;
  };
  for (; i < last && i % kBlock != 0; i++) {
    if (!entry_empty(i)) return i;
  }
  for (; i + kBlock <= last; i += kBlock) {
    uint64_t w[64];
    std::memcpy(w, l2 + i * kWords * 8, sizeof(w));
    uint64_t any = 0;
    for (size_t k = 0; k < 64; k++) any |= w[k];
    if (any) break;
  }
  for (; i < last; i++) {
    if (!entry_empty(i)) return i;
  }
  return last;
}

}  // namespace

uint64_t Qcow2Image::EmptyEntriesEnd(const uint8_t* l2, uint64_t offset, uint64_t limit) const {
  const uint32_t bits = header_.cluster_bits;
  const uint64_t entries = header_.l2_entries();
  const uint64_t cluster = offset >> bits;
  const uint64_t index = cluster % entries;
  const uint64_t last = std::min(entries, index + (((limit - 1) >> bits) - cluster) + 1);
  const uint64_t i = header_.extended_l2() ? FirstNonEmptyEntry<2>(l2, index, last)
                                           : FirstNonEmptyEntry<1>(l2, index, last);
  if (i == index) return offset;
  return std::min(limit, (cluster + (i - index)) << bits);
}

Status Qcow2Image::Describe(uint64_t offset, uint64_t max_length, LayerRun* run) const {
  const uint64_t end = std::min(offset + max_length, header_.size);
  const uint64_t table_span = header_.l2_entries() << header_.cluster_bits;
  const uint64_t l1_index = offset / table_span;
  const uint64_t table_end = std::min(end, (l1_index + 1) * table_span);

  L2Cache::Table table;
  CLONEKIT_RETURN_IF_ERROR(LoadL2(l1_index, &table));
  if (!table) {
    *run = LayerRun();
    run->length = table_end - offset;
    return Status::OK();
  }
  // Most entries of a snapshot layer are empty: step over a stretch of
  // all-zero entries (unallocated, nothing to validate) without decoding.
  const uint8_t* l2 = table.get();
  uint64_t empty_end = EmptyEntriesEnd(l2, offset, table_end);
  if (empty_end > offset) {
    *run = LayerRun();
    run->length = empty_end - offset;
    return Status::OK();
  }
  uint64_t unit_end = 0;
  CLONEKIT_RETURN_IF_ERROR(UnitAt(l2, offset, run, &unit_end));
  uint64_t pos = unit_end;
  // Extend over following units of the same kind inside this L2 table. The
  // cost is one decode per (sub)cluster of metadata actually read.
  while (pos < table_end && run->kind != RunKind::kCompressed) {
    LayerRun next;
    CLONEKIT_RETURN_IF_ERROR(UnitAt(l2, pos, &next, &unit_end));
    if (!Continues(*run, next)) break;
    run->length += next.length;
    pos = unit_end;
  }
  run->length = std::min(run->length, end - offset);
  return Status::OK();
}

Status Qcow2Image::SkipUnallocated(uint64_t offset, uint64_t limit, uint64_t* end) const {
  limit = std::min(limit, header_.size);
  const uint64_t table_span = header_.l2_entries() << header_.cluster_bits;
  const uint64_t l1_index = offset / table_span;
  const uint64_t table_end = std::min(limit, (l1_index + 1) * table_span);
  *end = offset;
  if (offset >= limit) return Status::OK();
  L2Cache::Table table;
  CLONEKIT_RETURN_IF_ERROR(LoadL2(l1_index, &table));
  *end = table ? EmptyEntriesEnd(table.get(), offset, table_end) : table_end;
  return Status::OK();
}

Status Qcow2Image::ReadCompressed(const HostLocation& stream, uint8_t* out, std::vector<uint8_t>* scratch,
                                  CacheUse cache) const {
  std::vector<uint8_t>& in = *scratch;
  in.resize(stream.compressed_size);
  CLONEKIT_RETURN_IF_ERROR(ReadHost(stream.offset, in.data(), in.size(), cache));
  return InflateCluster(stream, in.data(), in.size(), out);
}

Status Qcow2Image::InflateCluster(const HostLocation& stream, const uint8_t* in, size_t in_size, uint8_t* out) const {
  Codec codec = header_.compression == qcow2::Compression::kZstd ? Codec::kZstd : Codec::kDeflate;
  std::string err = DecompressCluster(codec, in, in_size, out, header_.cluster_size());
  if (!err.empty()) {
    return Status::Corruption(name(), "compressed cluster at " + Hex(stream.offset) + " (guest offset " +
                                          Hex(stream.cluster_start) + "): " + err);
  }
  return Status::OK();
}

}  // namespace clonekit
