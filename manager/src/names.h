// Names: the rules for VM, snapshot and pool names and namespaces, and the
// names clonekit derives from them on the host (libvirt's domain name, the
// clone's image files). Every derived name is injective in (namespace,
// name): '+' appears in no VM name or namespace, so "team+web" can only be
// VM web of namespace team.
//
// Thread-safety: pure functions.
#ifndef CLONEKIT_MANAGER_NAMES_H_
#define CLONEKIT_MANAGER_NAMES_H_

#include <string>

namespace clonekit::manager {

// Names of VMs and snapshots: 1-63 characters, letters, digits, '.', '_'
// and '-', starting with a letter or digit. "" when valid, else the error.
std::string CheckName(const std::string& what, const std::string& name);
// Namespaces: DNS labels (lowercase letters, digits and '-', 1-63, no '-'
// at either end).
std::string CheckNamespace(const std::string& ns);

// libvirt's (host-global) name of VM `name` in `ns`: the name itself in
// namespace "default", else "ns+name".
std::string LibvirtName(const std::string& ns, const std::string& name);

std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_NAMES_H_
