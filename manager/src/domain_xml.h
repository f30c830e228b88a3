// DomainXml: reading and rewriting libvirt domain XML, always through the
// allow-listed DomainModel (domain_model.h): every function here refuses a
// definition the model refuses, and every XML it returns is written from
// the model, never the caller's text.
//
// The manager keeps each VM's definition as libvirt XML. It needs to know
// the file-backed disks, and to rewrite a definition for a clone the way
// virt-clone does: new name and UUID, new MACs, host-specific bits cleared.
// Thread-safety: pure functions.
#ifndef CLONEKIT_MANAGER_DOMAIN_XML_H_
#define CLONEKIT_MANAGER_DOMAIN_XML_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::manager {

struct DiskSpec {
  std::string target;  // <target dev='vda'>
  std::string file;    // <source file=...>
  std::string format;  // <driver type=...>: raw or qcow2
};

struct InterfaceSpec {
  std::string mac;     // <mac address>
  std::string type;    // network, bridge, direct, user, ...
  std::string source;  // the network or bridge it joins, if any
  std::string model;   // <model type>, e.g. virtio
};

struct DomainInfo {
  std::string name, uuid, description;
  std::vector<DiskSpec> disks;  // device='disk', type='file'
  // Every host path the definition names (disks, cdroms, loader, NVRAM):
  // each must lie in a pool, with what it names (e.g. "disk vda").
  std::vector<std::pair<std::string, std::string>> host_paths;
  std::vector<std::string> macs;
  std::vector<InterfaceSpec> interfaces;
  std::string nvram;        // <os><nvram> path, if any
  uint64_t vcpus = 0;       // <vcpu>
  uint64_t memory_kib = 0;  // <memory>, converted from its unit
  std::string smbios_serial;  // <sysinfo type='smbios'><system><entry name='serial'>, if any
  bool has_genid = false;     // <genid>
  std::string genid;          // its value ("" = libvirt makes one)
  bool emulated_tpm = false;  // <tpm><backend type='emulator'>: swtpm keeps its state per UUID
};

Result<DomainInfo> ParseDomain(const std::string& xml);

// The file-backed disks of a domain as libvirt runs it (its live XML, which
// the model would refuse: libvirt adds aliases, addresses, labels): only
// each disk's target, top file and format are read.
Result<std::vector<DiskSpec>> RunningDisks(const std::string& libvirt_xml);

// Points the disks named in `disks` (by target) at new files and formats,
// dropping any <backingStore> (the new image stands alone, or the chain is
// for libvirt to probe from the image itself).
Result<std::string> SetDisks(const std::string& xml, const std::map<std::string, DiskSpec>& disks);

// Sets <uuid> and <description>, nothing else.
Result<std::string> SetIdentity(const std::string& xml, const std::string& uuid, const std::string& description);

// Sets <vcpu> and <memory> (KiB; <currentMemory> follows), when given.
Result<std::string> SetResources(const std::string& xml, std::optional<uint64_t> vcpus, std::optional<uint64_t> memory_kib);

// The definition libvirt gets: the same, with libvirt's own (global) name.
Result<std::string> ForLibvirt(const std::string& xml, const std::string& libvirt_name);

struct CloneIdentity {
  std::string name, uuid, description;
  // A fresh, unused MAC per interface; empty: every interface keeps its MAC.
  std::function<std::string()> new_mac;
  std::string serial;  // the SMBIOS system serial where one is set ("" keeps it)
  std::string genid;   // the VM generation ID where <genid> is ("" keeps it)
  std::map<std::string, DiskSpec> disks;  // by target
  std::string nvram;                      // new NVRAM path ("" to keep none)
};

// The clone's definition, as virt-clone makes it: name, UUID (also in
// <sysinfo>), description, every interface MAC new (unless kept) and its
// host device name cleared, graphics on autoport, unix channel paths
// cleared, NVRAM renamed, disks on the new images; and, when asked, a new
// SMBIOS serial and VM generation ID.
Result<std::string> MakeCloneXml(const std::string& xml, const CloneIdentity& id);

// A minimal definition for imported disks: type kvm, or qemu (TCG) where
// there is no KVM (kvm: false), so that it can start there.
std::string MinimalDomainXml(const std::string& name, const std::string& uuid, const std::vector<DiskSpec>& disks,
                             bool kvm = true);

// A random UUID (v4) and a random locally administered unicast MAC.
std::string RandomUuid();
// The lowercase, dashed form of a UUID the model accepted (with or without
// dashes, any case).
std::string CanonicalUuid(const std::string& uuid);
std::string RandomMac();

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_DOMAIN_XML_H_
