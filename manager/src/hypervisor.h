// Hypervisor: the power state of VMs, through libvirt's C API.
//
// libvirt's domain names are global on a host, so after a domain is defined
// every call names it by UUID (a name may belong to another namespace's VM,
// or to a domain clonekit never made). DomainRef's name is for messages.
// With no URI configured the manager still keeps definitions and clones
// disks; VMs then simply cannot run (NoHypervisor).
//
// Thread-safety: every method may be called from any thread (one call at a
// time on the connection). A dropped connection is reopened on the next
// call.
#ifndef CLONEKIT_MANAGER_HYPERVISOR_H_
#define CLONEKIT_MANAGER_HYPERVISOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::manager {

struct DomainRef {
  std::string uuid;  // what libvirt is asked by
  std::string name;  // what messages call it
};

// What an admin sees of a domain's power.
// kUnreachable: its host's libvirt does not answer now.
enum class PowerDetail { kRunning, kPaused, kStopping, kCrashed, kSuspended, kShutoff, kUndefined, kUnreachable };
// The power state every decision uses: running for any active VM (a crashed
// VM libvirt keeps is active too), else shutoff or undefined.
enum class Power { kRunning, kShutoff, kUndefined };

// (Unreachable counts as undefined: nothing can be done to it now.)
inline Power PowerOf(PowerDetail d) {
  return d == PowerDetail::kShutoff                                            ? Power::kShutoff
         : d == PowerDetail::kUndefined || d == PowerDetail::kUnreachable ? Power::kUndefined
                                                                              : Power::kRunning;
}
const char* PowerDetailName(PowerDetail d);

// One disk's new top for a live snapshot: a qcow2 overlay the caller made,
// whose backing file is the disk's current top.
struct DiskOverlay {
  std::string target;  // "vda"
  std::string file;    // absolute path
};
const char* PowerName(Power p);

// A running domain's block job on one disk, as libvirt reports it.
struct DiskJobProgress {
  bool active = false;     // false: none (finished, aborted, or never started)
  uint64_t done = 0, end = 0;  // progress in qemu's units (bytes of the disk, about)
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual bool available() const = 0;
  virtual std::string uri() const = 0;
  virtual PowerDetail Detail(const DomainRef& vm) = 0;
  Power State(const DomainRef& vm) { return PowerOf(Detail(vm)); }
  // The UUID of the domain libvirt knows by this name, if any.
  virtual std::optional<std::string> UuidOfName(const std::string& libvirt_name) = 0;
  // Whether libvirt knows a domain with this UUID.
  virtual bool KnowsUuid(const std::string& uuid) = 0;
  // Defines (or, for a UUID libvirt already has, redefines) from XML.
  [[nodiscard]] virtual Status Define(const std::string& xml) = 0;
  // Undefines the domain with this UUID (its NVRAM file is kept); OK when gone.
  [[nodiscard]] virtual Status Undefine(const DomainRef& vm) = 0;
  [[nodiscard]] virtual Status Start(const DomainRef& vm) = 0;
  // Asks the guest to shut down (ACPI) and waits up to timeout_seconds.
  [[nodiscard]] virtual Status Shutdown(const DomainRef& vm, int timeout_seconds) = 0;
  // Powers off at once.
  [[nodiscard]] virtual Status Destroy(const DomainRef& vm) = 0;
  // Switches the listed disks of the running domain to their overlays at
  // one instant: one libvirt call, which qemu runs as one transaction, so
  // all disks' snapshot points are the same moment. A guest agent that
  // answers freezes the guest's file systems around that instant
  // (*quiesced = true); one that is not configured or does not answer
  // gives a crash-consistent snapshot (*quiesced = false). A freeze that
  // the agent refuses fails the call. On failure the domain is unchanged
  // (still running, still on its old tops, thawed) and the overlays are
  // left for the caller to remove.
  // A domain that is off gets the same switch of its definition
  // (*quiesced = false).
  [[nodiscard]] virtual Status SnapshotDisks(const DomainRef& vm, const std::vector<DiskOverlay>& overlays,
                                             bool* quiesced) = 0;
  // Starts mirroring the disk's top image (only it: the guest's own
  // writes) into `file`, an image the caller made whose backing chain
  // reads the same as the top's (libvirt virDomainBlockCopy, shallow, the
  // file reused, a job not kept across restarts). Once the job has caught
  // up (DiskJob: done == end) PivotDisk switches the disk to it.
  [[nodiscard]] virtual Status MirrorDisk(const DomainRef& vm, const std::string& target, const std::string& file) = 0;
  // The domain's definition as libvirt runs it (live: its disks' current
  // tops; NotFound when it does not run) or keeps it for the next start.
  virtual Result<std::string> DomainXml(const DomainRef& vm, bool live) = 0;
  // Ends a caught-up mirror by switching the running disk to its copy.
  [[nodiscard]] virtual Status PivotDisk(const DomainRef& vm, const std::string& target) = 0;
  // The disk's block job now; an error only when libvirt cannot say.
  virtual Result<DiskJobProgress> DiskJob(const DomainRef& vm, const std::string& target) = 0;
  // Stops the disk's block job where it is (never a pivot): the disk stays
  // on its old top, whole.
  [[nodiscard]] virtual Status AbortDiskJob(const DomainRef& vm, const std::string& target) = 0;
};

// uri empty: no hypervisor.
Result<std::unique_ptr<Hypervisor>> OpenHypervisor(const std::string& uri);
// Another host's libvirt: connected on first use, and after a failed
// connect not tried again for 10 s (a host that is down costs one
// attempt per 10 s, not one per call).
std::unique_ptr<Hypervisor> RemoteHypervisor(const std::string& uri);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HYPERVISOR_H_
