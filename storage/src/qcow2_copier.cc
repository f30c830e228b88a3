// The qcow2 copier: whole 64 KiB clusters into a new qcow2 image.
//
// The plan is cut at output clusters (request size = cluster size), so the
// jobs of one cluster sit side by side in it. Worker threads take a few
// clusters at a time, gather each cluster's segments into a zeroed buffer
// (reading, inflating compressed source clusters) and hand the whole
// cluster to Qcow2Writer::WriteCluster, which skips it if all zero, else
// compresses and writes it on the same thread. After a window the writer
// writes out the L2 tables below its end.
#include <cstring>
#include <thread>
#include <vector>

#include "copier.h"
#include "copy_plan.h"
#include "first_error.h"
#include "helper_threads.h"
#include "qcow2_writer.h"

namespace clonekit {

namespace {

constexpr uint64_t kCs = Qcow2Writer::kClusterSize;
constexpr size_t kClustersPerTask = 16;

class Qcow2Copier final : public Copier {
 public:
  Qcow2Copier(const Chain& chain, Qcow2Writer& writer, const CollapseOptions& options)
      : chain_(chain),
        writer_(writer),
        threads_(options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency())),
        cache_(options.page_cache) {}

  Status CopyWindow(const ExtentMap& map, CopySignals& signals) override {
    PlanCopy(map, kCs, &plan_);
    // Task boundaries: the first job of every kClustersPerTask-th cluster.
    starts_.clear();
    for (size_t i = 0, clusters = 0; i < plan_.jobs.size(); i++) {
      if (i == 0 || ClusterOf(i) != ClusterOf(i - 1)) {
        if (clusters++ % kClustersPerTask == 0) starts_.push_back(i);
      }
    }
    starts_.push_back(plan_.jobs.size());

    std::atomic<size_t> next{0};
    FirstError error;
    auto work = [&] {
      std::vector<uint8_t> buf(kCs);
      ReadScratch scratch;
      scratch.cache = cache_;
      Qcow2Writer::Scratch packed;
      for (size_t t; (t = next.fetch_add(1)) + 1 < starts_.size();) {
        if (error.failed() || signals.stopped()) return;
        for (size_t i = starts_[t]; i < starts_[t + 1];) {
          const uint64_t cluster = ClusterOf(i);
          std::memset(buf.data(), 0, kCs);
          uint64_t bytes = 0;
          Status s;
          for (; i < starts_[t + 1] && ClusterOf(i) == cluster && s.ok(); i++) {
            const CopyJob& job = plan_.jobs[i];
            uint8_t* at = buf.data() + (job.dst - cluster * kCs);
            for (uint32_t k = 0; k < job.count && s.ok(); k++) {
              s = ReadSegment(chain_, map, plan_.segments[job.first + k], at, &scratch);
            }
            bytes += job.length;
          }
          if (s.ok()) s = writer_.WriteCluster(cluster, buf.data(), &packed);
          if (!s.ok()) return error.Set(s);
          signals.data_done.fetch_add(bytes, std::memory_order_relaxed);
        }
      }
    };
    {
      // (One thread per start but the last, at most threads_, the caller's included.)
      const size_t extra = std::min<size_t>(threads_, starts_.size() == 0 ? 0 : starts_.size() - 1);
      HelperThreads helpers(extra == 0 ? 0 : extra - 1, [&](size_t) { work(); });
      work();
    }
    if (error.failed()) return error.status();
    if (signals.stopped()) return Status::Cancelled("interrupted");
    return writer_.CompleteBelow(map.empty() ? 0 : map.extents().back().end());
  }

  Status Finish() override { return writer_.Finish(); }

 private:
  uint64_t ClusterOf(size_t job) const { return plan_.jobs[job].dst / kCs; }

  const Chain& chain_;
  Qcow2Writer& writer_;
  const unsigned threads_;
  const CacheUse cache_;
  CopyPlan plan_;
  std::vector<size_t> starts_;
};

}  // namespace

std::unique_ptr<Copier> NewQcow2Copier(const Chain& chain, Qcow2Writer& writer, const CollapseOptions& options) {
  return std::make_unique<Qcow2Copier>(chain, writer, options);
}

}  // namespace clonekit
