// Generalize: what makes a clone a new machine, item by item, and the
// report of what a clone job changed for each.
//
// Guest items are reset inside the clone's disks (guest_identity.h, through
// libguestfs); host items in the clone's definition (domain_xml.h) or next
// to it (the emulated TPM's state, tpm_state.h). Each is on or off per
// clone. Spelling, shared by the API, the CLI and the store: a comma list
// read left to right from the base set (the host items a clone always got:
// new MACs, serial, generation ID), where "default" adds every item that is
// on by default, "none" clears all, ITEM turns one on and -ITEM off.
//
// Thread-safety: values; pure functions.
#ifndef CLONEKIT_MANAGER_GENERALIZE_H_
#define CLONEKIT_MANAGER_GENERALIZE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::manager {

enum class GeneralizeItem {
  // Inside the guest (a Linux guest found by inspection):
  kMachineId,        // /etc/machine-id emptied, /var/lib/dbus/machine-id removed
  kSshHostKeys,      // /etc/ssh/ssh_host_* replaced or removed
  kHostname,         // /etc/hostname (and /etc/hosts) set to the clone's name
  kCloudInit,        // /var/lib/cloud instance state cleared (first boot again)
  kNetworkBindings,  // the source's MACs in NetworkManager/udev/ifcfg/networkd files, DHCP leases
  // On the host:
  kMacAddresses,  // new MACs on every interface
  kSmbiosSerial,  // a new SMBIOS system serial where the definition sets one
  kGenid,         // a new VM generation ID where the definition has <genid>
  kTpm,           // a new (empty) emulated TPM; off: its state is copied
};
inline constexpr GeneralizeItem kAllGeneralizeItems[] = {
    GeneralizeItem::kMachineId,    GeneralizeItem::kSshHostKeys,  GeneralizeItem::kHostname,
    GeneralizeItem::kCloudInit,    GeneralizeItem::kNetworkBindings, GeneralizeItem::kMacAddresses,
    GeneralizeItem::kSmbiosSerial, GeneralizeItem::kGenid,        GeneralizeItem::kTpm};

const char* GeneralizeItemName(GeneralizeItem item);
// The item named exactly `name`, if any.
std::optional<GeneralizeItem> GeneralizeItemOf(const std::string& name);
bool IsGuestItem(GeneralizeItem item);
// On in "default" (every item but kTpm: a clone keeps its TPM's keys
// unless asked).
bool OnByDefault(GeneralizeItem item);

// A set of items.
class GeneralizeItems {
 public:
  // The base set: what a clone gets when nothing is asked.
  static GeneralizeItems Base();
  static GeneralizeItems Defaults();
  static GeneralizeItems None() { return GeneralizeItems(); }

  bool Has(GeneralizeItem item) const { return bits_ & Bit(item); }
  void Set(GeneralizeItem item, bool on) { bits_ = on ? bits_ | Bit(item) : bits_ & ~Bit(item); }
  bool AnyGuest() const;
  std::vector<GeneralizeItem> Items() const;
  // The canonical spelling: the items on, comma separated ("" for none).
  std::string ToString() const;
  bool operator==(const GeneralizeItems& o) const { return bits_ == o.bits_; }

 private:
  static uint32_t Bit(GeneralizeItem item) { return 1u << static_cast<unsigned>(item); }
  uint32_t bits_ = 0;
};

// Parses the spelling above ("default", "none", "default,-hostname",
// "machine-id,-mac-addresses"); an unknown token is an error naming it.
Result<GeneralizeItems> ParseGeneralize(const std::string& spec);
// Reads a stored canonical spelling (unknown names are skipped).
GeneralizeItems GeneralizeFromStore(const std::string& canonical);

// One line of a job's report: an item changed (or could not change, or had
// nothing to change) one thing. `disk` is the clone's disk target holding
// `path` (a guest path), "" for host-side items; `path` is the file, or
// for host items what was changed ("interface 1", "/var/lib/libvirt/...").
struct IdentityChange {
  GeneralizeItem item = GeneralizeItem::kMachineId;
  std::string disk, path, change;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_GENERALIZE_H_
