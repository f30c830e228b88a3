// Google Benchmark microbenchmarks of the engine's inner loops: resolving a
// chain (by depth), extent coalescing, L2 entry decoding, and inflating one
// compressed cluster (deflate, zstd).
#include <benchmark/benchmark.h>

#include <random>

#include "clonekit/chain_resolver.h"
#include "compression.h"
#include "qcow2_format.h"
#include "test_images.h"

namespace clonekit {
namespace {

using testing::BuildQcow2;
using testing::Fill;
using testing::MemoryOpener;
using testing::TestImageSpec;

// A 1 GiB chain, 64 KiB clusters, each layer writing `per_layer` clusters
// (164 = 1 %).
std::unique_ptr<Chain> MakeChain(int depth, MemoryOpener& opener, int per_layer = 164) {
  std::mt19937 rng(1);
  for (int d = 0; d < depth; d++) {
    TestImageSpec s;
    s.size = 1ull << 30;
    if (d + 1 < depth) s.backing = "layer" + std::to_string(d + 1);
    for (int i = 0; i < per_layer; i++) s.clusters.push_back({rng() % 16384, Fill::kData, 1});
    opener.Add("layer" + std::to_string(d), BuildQcow2(s));
  }
  auto chain = OpenChain("layer0", opener, {});
  return chain.ok() ? std::move(chain).value() : nullptr;
}

void ResolveLoop(benchmark::State& state, const Chain& chain) {
  ExtentMap map;
  for (auto _ : state) {
    ChainResolver resolver(chain);
    if (!resolver.Resolve(0, chain.virtual_size(), &map).ok()) state.SkipWithError("resolve failed");
    benchmark::DoNotOptimize(map.extents().data());
  }
  state.counters["extents"] = static_cast<double>(map.extents().size());
}

void BM_ResolveByDepth(benchmark::State& state) {
  MemoryOpener opener;
  auto chain = MakeChain(static_cast<int>(state.range(0)), opener);
  ResolveLoop(state, *chain);
}
BENCHMARK(BM_ResolveByDepth)->Arg(1)->Arg(4)->Arg(16)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);

// Depth 16, with more or fewer clusters allocated per layer.
void BM_ResolveByClusters(benchmark::State& state) {
  MemoryOpener opener;
  auto chain = MakeChain(16, opener, static_cast<int>(state.range(0)));
  ResolveLoop(state, *chain);
}
BENCHMARK(BM_ResolveByClusters)->Arg(16)->Arg(164)->Arg(1638)->Arg(8192)->Unit(benchmark::kMillisecond);

void BM_ExtentCoalescing(benchmark::State& state) {
  std::vector<Extent> input;
  for (uint64_t i = 0; i < static_cast<uint64_t>(state.range(0)); i++) {
    Extent e;
    e.start = i * 65536;
    e.length = 65536;
    e.kind = RunKind::kData;
    e.host.valid = true;
    e.host.offset = (i % 4 == 3 ? 1ull << 40 : 0) + i * 65536;  // every 4th breaks the run
    input.push_back(e);
  }
  std::shuffle(input.begin(), input.end(), std::mt19937(2));
  for (auto _ : state) {
    ExtentMap m;
    for (const Extent& e : input) m.Append(e);
    m.SortAndCoalesce();
    benchmark::DoNotOptimize(m.extents().data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ExtentCoalescing)->Arg(1 << 10)->Arg(1 << 16);

void BM_L2Decode(benchmark::State& state) {
  std::vector<uint64_t> entries(8192);
  std::mt19937_64 rng(3);
  for (auto& e : entries) {
    switch (rng() % 4) {
      case 0: e = 0; break;
      case 1: e = (1ull << 63) | ((rng() % (1 << 20)) << 16); break;
      case 2: e = 1; break;
      default: e = (1ull << 62) | (3ull << 54) | (rng() % (1ull << 40)); break;
    }
  }
  qcow2::Geometry g{16, 3, false};
  for (auto _ : state) {
    for (uint64_t e : entries) {
      qcow2::L2Entry out;
      benchmark::DoNotOptimize(qcow2::DecodeL2Entry(e, g, &out));
    }
  }
  state.SetItemsProcessed(state.iterations() * entries.size());
}
BENCHMARK(BM_L2Decode);

void BM_Decompress(benchmark::State& state) {
  Codec codec = state.range(0) ? Codec::kZstd : Codec::kDeflate;
  std::mt19937 rng(4);
  std::vector<uint8_t> cluster(65536), packed(65536), out(65536);
  for (size_t i = 0; i < cluster.size(); i++) cluster[i] = (i / 2048) % 2 ? 'a' + i % 26 : static_cast<uint8_t>(rng());
  size_t n = CompressCluster(codec, cluster.data(), cluster.size(), packed.data(), packed.size());
  for (auto _ : state) {
    std::string err = DecompressCluster(codec, packed.data(), n, out.data(), out.size());
    if (!err.empty()) state.SkipWithError(err.c_str());
  }
  state.SetBytesProcessed(state.iterations() * 65536);
  state.SetLabel(codec == Codec::kZstd ? "zstd" : "deflate");
}
BENCHMARK(BM_Decompress)->Arg(0)->Arg(1);

}  // namespace
}  // namespace clonekit

BENCHMARK_MAIN();
