// GuestIdentity: resets a clone's identity inside its disks, offline,
// through libguestfs (its appliance mounts the guest's file systems: ext4,
// xfs, btrfs, LVM...; clonekit reads none of them itself).
//
// Runs on the clone's own new images (a full clone's outputs, a linked or
// instant clone's overlays) before the clone is defined; never on a source.
// The guest is hostile input: its files are read and written only inside
// the appliance, each at most 1 MiB, symbolic links are never followed,
// and what is written comes from clonekit (names, MACs, keys it made).
//
// Thread-safety: each call has its own libguestfs handle; calls may run
// concurrently. Blocking: a call launches a small VM (seconds with KVM,
// ~15 s under TCG).
#ifndef CLONEKIT_MANAGER_GUEST_IDENTITY_H_
#define CLONEKIT_MANAGER_GUEST_IDENTITY_H_

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "clonekit/status.h"
#include "generalize.h"

namespace clonekit::manager {

struct GuestDisk {
  std::string target;  // the clone's disk ("vda"), for the report
  std::string path;    // its image (made by this job)
  std::string format;  // "raw" or "qcow2": given, never probed
};

struct GuestResetRequest {
  std::vector<GuestDisk> disks;  // in the definition's order
  GeneralizeItems items;         // only the guest items are read
  std::string hostname;          // the clone's new hostname
  std::string instance_id;       // a new cloud-init instance-id (the clone's UUID)
  // Each source interface's MAC and the clone's (lowercase); equal pairs
  // when the clone keeps its MACs.
  std::vector<std::pair<std::string, std::string>> macs;
  // Cancel, or the deadline passing, stops the appliance at once (its qemu,
  // a child of this process with libguestfs's direct backend, killed),
  // whatever libguestfs call is waiting on it. With another backend (the
  // admin's LIBGUESTFS_BACKEND) they take effect at the next item.
  const std::atomic<bool>* cancel = nullptr;
  int timeout_seconds = 600;
  std::function<void(double)> progress;       // 0..1, as items finish
  // If set, how long each phase took, in order: "appliance" (its start),
  // "inspection" (finding and mounting the guest), each item, "sync".
  std::vector<std::pair<std::string, double>>* timings = nullptr;
};

// Inspects the disks and applies the guest items that are on. A guest
// libguestfs cannot inspect (no operating system found, or not Linux)
// gets a report line per item saying why nothing was done, and OK.
// An item that fails returns an error naming the item and the file
// ("generalize ssh-host-keys: /etc/ssh/ssh_host_rsa_key on disk vda: ...").
// REQUIRES: every disk is this job's own new image, not open elsewhere
// for writing.
[[nodiscard]] Result<std::vector<IdentityChange>> ResetGuestIdentity(const GuestResetRequest& request);

// The hostname a clone name gives: '_' (not allowed in host names) becomes
// '-', lowercase, at most 63 characters.
std::string HostnameFor(const std::string& clone_name);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_GUEST_IDENTITY_H_
