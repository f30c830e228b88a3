// Collapse: copy the disk as seen at a chain's top layer into one standalone
// image, atomically (temporary name, fdatasync, rename, directory fsync).
#ifndef CLONEKIT_COLLAPSE_H_
#define CLONEKIT_COLLAPSE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "clonekit/chain.h"

namespace clonekit {

enum class OutputFormat { kRaw, kQcow2 };
enum class OutputCompression { kNone, kZstd, kDeflate };

struct CollapseOptions {
  OutputFormat format = OutputFormat::kRaw;
  OutputCompression compression = OutputCompression::kNone;  // qcow2 only
  bool overwrite = false;                                    // --force
  // Called with bytes of data copied so far and the total to copy.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Polled between chunks; when set, the copy stops and nothing is left.
  const std::atomic<bool>* cancel = nullptr;
};

struct CollapseStats {
  uint64_t virtual_size = 0;
  uint64_t data_bytes = 0;  // bytes copied from layers
  size_t extents = 0;
};

Status Collapse(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                CollapseStats* stats = nullptr);

// Removes any temporary output files still in progress. Async-signal-safe:
// for a second SIGINT/SIGTERM that must exit at once.
void RemovePartialOutputs();

}  // namespace clonekit

#endif  // CLONEKIT_COLLAPSE_H_
