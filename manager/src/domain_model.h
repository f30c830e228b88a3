// DomainModel: a libvirt domain definition reduced to an allow-list.
//
// The service runs as root next to libvirt, and a domain definition is root
// on the host (an <emulator>, a <qemu:commandline>, a <hostdev>, a disk on
// /etc/shadow...). So caller XML never reaches libvirt: it is parsed into
// this tree, every element, attribute and value checked against the
// allow-list of what a cloned guest needs (see kRules in domain_model.cc
// and docs/api.md, "Security model"), and the XML libvirt gets is written
// from the tree. Anything else is refused with one line naming it
// ("devices/hostdev: not allowed").
//
// Host paths in the tree (file disks and cdroms, the firmware loader and
// NVRAM) are only checked for form here; the manager confines them to its
// pools (PathsToConfine()).
//
// Thread-safety: values; parse and write are pure functions.
#ifndef CLONEKIT_MANAGER_DOMAIN_MODEL_H_
#define CLONEKIT_MANAGER_DOMAIN_MODEL_H_

#include <string>
#include <utility>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::manager {

struct Element {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attrs;  // in document order
  std::string text;                                        // leaf text, trimmed
  std::vector<Element> children;

  const std::string* Attr(const std::string& key) const;
  std::string AttrOr(const std::string& key, const std::string& def = "") const;
  void SetAttr(const std::string& key, const std::string& value);
  void RemoveAttr(const std::string& key);
  Element* Child(const std::string& child);
  const Element* Child(const std::string& child) const;
  Element& ChildOrAdd(const std::string& child);
  void RemoveChildren(const std::string& child);
};

// Parses and checks `xml` (at most kMaxDomainXmlBytes). The root is <domain>.
Result<Element> ParseDomainModel(const std::string& xml);

// The XML for libvirt, written from the tree (libxml2 escapes every value).
std::string WriteDomainModel(const Element& domain);

inline constexpr size_t kMaxDomainXmlBytes = 256 * 1024;

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_DOMAIN_MODEL_H_
