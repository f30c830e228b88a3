// The copy driver (internal): the one loop every collapse runs.
//
// It resolves the chain a window at a time (memory stays bounded by one
// window's extents whatever the virtual size), hands each window to the
// copier on a helper thread, and meanwhile, on the caller's thread, reports
// progress about every 50 ms and watches for cancel. After a window it
// sleeps as long as the rate limit asks. Progress callbacks therefore always
// run on the caller's thread.
#ifndef CLONEKIT_STORAGE_COPY_DRIVER_H_
#define CLONEKIT_STORAGE_COPY_DRIVER_H_

#include "clonekit/chain.h"
#include "clonekit/collapse.h"
#include "copier.h"

namespace clonekit {

// Copies the disk at the chain's top through `copier` and calls its Finish.
// Uses options.window_bytes, max_bytes_per_second, progress,
// data_progress and cancel. *data_bytes: the data bytes copied.
[[nodiscard]] Status DriveCopy(const Chain& chain, Copier& copier, const CollapseOptions& options,
                               uint64_t* data_bytes);

// The window the driver uses: the configured one, or without a rate limit
// about a quarter second of data at the limit (whole 64 KiB units, at least
// one request), so the limit holds at a fine grain.
uint64_t DriverWindowBytes(const CollapseOptions& options);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_COPY_DRIVER_H_
