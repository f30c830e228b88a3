// Hypervisor: the power state of VMs, through libvirt's C API.
//
// With no URI configured the manager still keeps definitions and clones
// disks; VMs then simply cannot run (NoHypervisor).
#ifndef CLONEKIT_MANAGER_HYPERVISOR_H_
#define CLONEKIT_MANAGER_HYPERVISOR_H_

#include <memory>
#include <string>

#include "clonekit/status.h"

namespace clonekit::manager {

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual bool available() const = 0;
  virtual std::string uri() const = 0;
  // What an admin sees: "running", "paused", "stopping" (shutting down),
  // "crashed", "suspended", "shutoff", or "undefined" when libvirt does not
  // know the VM.
  virtual std::string Detail(const std::string& name) = 0;
  // The power state every decision uses: "running" for any active VM (a
  // crashed VM libvirt keeps is active too), else "shutoff" or "undefined".
  std::string State(const std::string& name) { return PowerOf(Detail(name)); }
  static std::string PowerOf(const std::string& detail) {
    return detail == "shutoff" || detail == "undefined" ? detail : "running";
  }
  // Defines (or redefines) the domain from XML.
  virtual Status Define(const std::string& xml) = 0;
  virtual Status Undefine(const std::string& name) = 0;
  virtual Status Start(const std::string& name) = 0;
  // Asks the guest to shut down (ACPI) and waits up to timeout_seconds.
  virtual Status Shutdown(const std::string& name, int timeout_seconds) = 0;
  // Powers off at once.
  virtual Status Destroy(const std::string& name) = 0;
};

// uri empty: no hypervisor.
Result<std::unique_ptr<Hypervisor>> OpenHypervisor(const std::string& uri);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HYPERVISOR_H_
