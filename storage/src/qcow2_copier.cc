#include "qcow2_copier.h"

#include <cstring>
#include <mutex>
#include <thread>

#include "extent_copier.h"

namespace clonekit {

namespace {

// A piece of an extent that lands in one output cluster.
struct Piece {
  uint32_t extent;     // index into the map
  uint32_t in_cluster; // offset inside the output cluster
  uint32_t length;
  uint64_t skip;       // offset inside the extent
  uint64_t cluster;    // output cluster index
};

constexpr uint64_t kCs = Qcow2Writer::kClusterSize;
constexpr size_t kClustersPerTask = 16;

std::vector<Piece> CutIntoPieces(const ExtentMap& map) {
  std::vector<Piece> pieces;
  const auto& extents = map.extents();
  for (uint32_t i = 0; i < extents.size(); i++) {
    const Extent& e = extents[i];
    if (e.reads_zero()) continue;
    for (uint64_t pos = e.start; pos < e.end();) {
      uint64_t end = std::min(e.end(), (pos / kCs + 1) * kCs);
      pieces.push_back({i, static_cast<uint32_t>(pos % kCs), static_cast<uint32_t>(end - pos), pos - e.start,
                        pos / kCs});
      pos = end;
    }
  }
  return pieces;
}

}  // namespace

Status CopyToQcow2(const Chain& chain, const ExtentMap& map, Qcow2Writer& writer, unsigned threads,
                   const std::atomic<bool>* cancel, std::atomic<uint64_t>* copied) {
  const std::vector<Piece> pieces = CutIntoPieces(map);
  // Task boundaries: the first piece of every kClustersPerTask-th cluster.
  std::vector<size_t> starts;
  for (size_t i = 0, clusters = 0; i < pieces.size(); i++) {
    if (i == 0 || pieces[i].cluster != pieces[i - 1].cluster) {
      if (clusters++ % kClustersPerTask == 0) starts.push_back(i);
    }
  }
  starts.push_back(pieces.size());

  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    std::vector<uint8_t> buf(kCs);
    ReadScratch scratch;
    Qcow2Writer::Scratch packed;
    for (size_t t; (t = next.fetch_add(1)) + 1 < starts.size();) {
      if (failed || (cancel && cancel->load(std::memory_order_relaxed))) return;
      for (size_t i = starts[t]; i < starts[t + 1];) {
        const uint64_t cluster = pieces[i].cluster;
        std::memset(buf.data(), 0, kCs);
        uint64_t bytes = 0;
        Status s;
        for (; i < starts[t + 1] && pieces[i].cluster == cluster && s.ok(); i++) {
          const Piece& p = pieces[i];
          s = ReadExtent(chain, map.extents()[p.extent], p.skip, buf.data() + p.in_cluster, p.length, &scratch);
          bytes += p.length;
        }
        if (s.ok()) s = writer.WriteCluster(cluster, buf.data(), &packed);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (!failed.exchange(true)) first_error = s;
          return;
        }
        copied->fetch_add(bytes, std::memory_order_relaxed);
      }
    }
  };
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> helpers;
  for (unsigned t = 1; t < threads && t + 1 < starts.size(); t++) helpers.emplace_back(work);
  work();
  for (auto& h : helpers) h.join();
  if (failed) return first_error;
  if (cancel && cancel->load()) return Status::Cancelled("interrupted");
  return Status::OK();
}

}  // namespace clonekit
