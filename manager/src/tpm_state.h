// TpmState: the emulated TPM's state that libvirt's swtpm keeps per domain
// UUID (<dir>/<uuid>/tpm2/..., dir = /var/lib/libvirt/swtpm). A clone gets
// a new UUID, so without a copy its TPM starts empty at first boot and
// whatever the guest sealed in it (BitLocker, LUKS bound to the TPM) is
// lost; with a copy it is the same TPM, keys included.
//
// Thread-safety: functions on paths; concurrent calls on different UUIDs
// are safe. REQUIRES: run as root (swtpm's files belong to its user).
#ifndef CLONEKIT_MANAGER_TPM_STATE_H_
#define CLONEKIT_MANAGER_TPM_STATE_H_

#include <string>

#include "clonekit/status.h"

namespace clonekit::manager {

// Copies <dir>/<from>/ to a new <dir>/<to>/: directories and regular files
// only (a symbolic link or anything else in it is an error, never
// followed), each with its owner and mode. Returns false when the source
// has no state yet (its TPM never ran). The target must not exist; a copy
// that fails is removed.
[[nodiscard]] Result<bool> CopyTpmState(const std::string& dir, const std::string& from_uuid, const std::string& to_uuid);

// Removes <dir>/<uuid>/ (made by CopyTpmState), never following a link.
void RemoveTpmState(const std::string& dir, const std::string& uuid);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_TPM_STATE_H_
