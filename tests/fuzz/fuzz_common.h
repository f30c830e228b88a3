// Shared by the fuzz targets: resolve a chain and read what it maps, with
// bounds so one input cannot take long.
#ifndef CLONEKIT_TESTS_FUZZ_COMMON_H_
#define CLONEKIT_TESTS_FUZZ_COMMON_H_

#include "clonekit/chain_resolver.h"
#include "extent_reader.h"

namespace clonekit::fuzz {

inline void ResolveAndRead(const Chain& chain) {
  constexpr uint64_t kWindow = 64ull << 20;  // resolve the first 64 MiB
  constexpr uint64_t kReadBudget = 8ull << 20;
  ExtentMap map;
  ChainResolver resolver(chain);
  if (!resolver.Resolve(0, kWindow, &map).ok()) return;
  std::vector<uint8_t> buf;
    ReadScratch scratch;
  uint64_t budget = kReadBudget;
  for (const Extent& e : map.extents()) {
    if (e.reads_zero()) continue;
    uint64_t n = std::min<uint64_t>(e.length, budget);
    if (n == 0) break;
    buf.resize(n);
    if (!ReadExtent(chain, e, 0, buf.data(), n, &scratch).ok()) return;
    budget -= n;
  }
}

}  // namespace clonekit::fuzz

#endif  // CLONEKIT_TESTS_FUZZ_COMMON_H_
