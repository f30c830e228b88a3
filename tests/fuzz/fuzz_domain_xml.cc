// libFuzzer target: a domain definition through the allow-list model
// (parse, check, write), the typed reading and the clone rewrite. Oracle:
// no crash or sanitizer report, and whatever is accepted is a fixed point
// (what we write parses back to the same XML), and so is a clone of it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "domain_model.h"
#include "domain_xml.h"

using namespace clonekit::manager;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string xml(reinterpret_cast<const char*>(data), size);
  clonekit::Result<Element> model = ParseDomainModel(xml);
  if (!model.ok()) return 0;
  const std::string written = WriteDomainModel(*model);
  clonekit::Result<Element> again = ParseDomainModel(written);
  if (!again.ok() || WriteDomainModel(*again) != written) std::abort();
  clonekit::Result<DomainInfo> info = ParseDomain(xml);
  if (!info.ok()) return 0;
  CloneIdentity id;
  id.name = "fuzz-clone";
  id.uuid = "00000000-0000-4000-8000-000000000001";
  id.description = "a <clone> & \"more\"";
  id.new_mac = [] { return std::string("52:54:00:00:00:01"); };
  id.serial = id.uuid;                                // generalize's host items
  id.genid = "00000000-0000-4000-8000-000000000002";
  for (const DiskSpec& d : info->disks) id.disks[d.target] = {d.target, "/pool/fuzz-clone-" + d.target + ".qcow2", "qcow2"};
  clonekit::Result<std::string> clone = MakeCloneXml(xml, id);
  if (!clone.ok() || !ParseDomain(*clone).ok()) std::abort();
  return 0;
}
