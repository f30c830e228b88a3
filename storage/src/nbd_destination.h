// Collapse into an NBD export (internal): how a clone reaches storage on
// another host. The export is written in place, like `-n`: it is the disk.
#ifndef CLONEKIT_STORAGE_NBD_DESTINATION_H_
#define CLONEKIT_STORAGE_NBD_DESTINATION_H_

#include <string>

#include "clonekit/collapse.h"

namespace clonekit {

// nbd://, nbds://, nbd+unix://, nbds+unix://, nbd+vsock:// (libnbd's URIs).
bool IsNbdUri(const std::string& destination);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_NBD_DESTINATION_H_
