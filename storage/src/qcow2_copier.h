// Qcow2Copier (internal): fills a Qcow2Writer from a window's extents on
// several threads. Work is cut per output cluster (64 KiB): a thread
// gathers the pieces of its clusters (reading, inflating compressed source
// clusters), then hands each whole cluster to Qcow2Writer::WriteCluster,
// which compresses and writes it on the same thread.
#ifndef CLONEKIT_STORAGE_QCOW2_COPIER_H_
#define CLONEKIT_STORAGE_QCOW2_COPIER_H_

#include <atomic>

#include "clonekit/chain.h"
#include "clonekit/extent_map.h"
#include "qcow2_writer.h"

namespace clonekit {

Status CopyToQcow2(const Chain& chain, const ExtentMap& map, Qcow2Writer& writer, unsigned threads,
                   const std::atomic<bool>* cancel, std::atomic<uint64_t>* copied);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_QCOW2_COPIER_H_
