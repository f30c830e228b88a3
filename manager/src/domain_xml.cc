#include "domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <uuid/uuid.h>

#include <charconv>
#include <map>
#include <memory>
#include <random>

namespace clonekit::manager {

namespace {

struct DocDeleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocDeleter>;

Result<Doc> ParseXml(const std::string& xml) {
  // No network, no entity expansion: definitions come from users.
  Doc doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) {
    const xmlError* e = xmlGetLastError();
    std::string why = e && e->message ? e->message : "not well-formed";
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::InvalidArgument("domain XML", "not valid XML: " + why);
  }
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!root || xmlStrcmp(root->name, BAD_CAST "domain") != 0) {
    return Status::InvalidArgument("domain XML", "the root element must be <domain>");
  }
  return doc;
}

// Nodes matching an XPath expression from the document root.
std::vector<xmlNode*> Find(xmlDoc* doc, const char* path) {
  std::vector<xmlNode*> out;
  xmlXPathContext* ctx = xmlXPathNewContext(doc);
  xmlXPathObject* res = xmlXPathEvalExpression(BAD_CAST path, ctx);
  if (res && res->nodesetval) {
    for (int i = 0; i < res->nodesetval->nodeNr; i++) out.push_back(res->nodesetval->nodeTab[i]);
  }
  xmlXPathFreeObject(res);
  xmlXPathFreeContext(ctx);
  return out;
}

std::string Attr(xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, BAD_CAST name);
  std::string s = v ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return s;
}

std::string Text(xmlNode* n) {
  xmlChar* v = xmlNodeGetContent(n);
  std::string s = v ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return s;
}

xmlNode* Child(xmlNode* parent, const char* name) {
  for (xmlNode* c = parent->children; c; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0) return c;
  }
  return nullptr;
}

// Sets the text of <name> under the root, creating it if missing.
void SetTopText(xmlDoc* doc, const char* name, const std::string& value) {
  xmlNode* root = xmlDocGetRootElement(doc);
  xmlNode* n = Child(root, name);
  if (!n) n = xmlNewChild(root, nullptr, BAD_CAST name, nullptr);
  xmlNodeSetContent(n, nullptr);
  xmlNodeAddContent(n, BAD_CAST value.c_str());
}

std::string Serialize(xmlDoc* doc) {
  xmlChar* mem = nullptr;
  int size = 0;
  xmlDocDumpFormatMemory(doc, &mem, &size, 1);
  std::string s(reinterpret_cast<const char*>(mem), size);
  xmlFree(mem);
  return s;
}

std::vector<DiskSpec> Disks(xmlDoc* doc) {
  std::vector<DiskSpec> out;
  for (xmlNode* d : Find(doc, "/domain/devices/disk[@device='disk' or not(@device)][@type='file']")) {
    DiskSpec spec;
    if (xmlNode* t = Child(d, "target")) spec.target = Attr(t, "dev");
    if (xmlNode* s = Child(d, "source")) spec.file = Attr(s, "file");
    if (xmlNode* dr = Child(d, "driver")) spec.format = Attr(dr, "type");
    if (spec.format.empty()) spec.format = "raw";  // libvirt's default
    out.push_back(spec);
  }
  return out;
}

void ApplyDisks(xmlDoc* doc, const std::map<std::string, DiskSpec>& disks) {
  for (xmlNode* d : Find(doc, "/domain/devices/disk[@device='disk' or not(@device)][@type='file']")) {
    xmlNode* t = Child(d, "target");
    auto it = t ? disks.find(Attr(t, "dev")) : disks.end();
    if (it == disks.end()) continue;
    xmlNode* s = Child(d, "source");
    if (!s) s = xmlNewChild(d, nullptr, BAD_CAST "source", nullptr);
    xmlSetProp(s, BAD_CAST "file", BAD_CAST it->second.file.c_str());
    xmlNode* dr = Child(d, "driver");
    if (!dr) {
      dr = xmlNewChild(d, nullptr, BAD_CAST "driver", nullptr);
      xmlSetProp(dr, BAD_CAST "name", BAD_CAST "qemu");
    }
    xmlSetProp(dr, BAD_CAST "type", BAD_CAST it->second.format.c_str());
    if (xmlNode* b = Child(d, "backingStore")) {
      xmlUnlinkNode(b);
      xmlFreeNode(b);
    }
  }
}

// A decimal count, 0 if the text is not one (the summary is informative;
// libvirt validates the definition itself).
uint64_t Number(const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && end == text.data() + text.size() ? v : 0;
}

// <memory unit=...> in KiB; libvirt's default unit is KiB.
uint64_t MemoryKib(uint64_t value, const std::string& unit) {
  static const std::map<std::string, uint64_t> kBytesPer = {
      {"b", 1},          {"bytes", 1},     {"KB", 1000},       {"k", 1024},        {"KiB", 1024},
      {"MB", 1000000},   {"M", 1 << 20},   {"MiB", 1 << 20},   {"GB", 1000000000}, {"G", 1ull << 30},
      {"GiB", 1ull << 30}, {"TB", 1000000000000}, {"T", 1ull << 40}, {"TiB", 1ull << 40}};
  if (unit.empty()) return value;
  auto it = kBytesPer.find(unit);
  if (it == kBytesPer.end() || value > UINT64_MAX / it->second) return 0;
  return value * it->second / 1024;
}

InterfaceSpec Interface(xmlNode* iface) {
  InterfaceSpec spec;
  spec.type = Attr(iface, "type");
  if (xmlNode* mac = Child(iface, "mac")) spec.mac = Attr(mac, "address");
  if (xmlNode* model = Child(iface, "model")) spec.model = Attr(model, "type");
  if (xmlNode* source = Child(iface, "source")) {
    for (const char* a : {"network", "bridge", "dev"}) {
      if (spec.source.empty()) spec.source = Attr(source, a);
    }
  }
  return spec;
}

}  // namespace

Result<DomainInfo> ParseDomain(const std::string& xml) {
  Result<Doc> doc = ParseXml(xml);
  if (!doc.ok()) return doc.status();
  DomainInfo info;
  xmlDoc* d = doc->get();
  for (xmlNode* n : Find(d, "/domain/name")) info.name = Text(n);
  for (xmlNode* n : Find(d, "/domain/uuid")) info.uuid = Text(n);
  for (xmlNode* n : Find(d, "/domain/description")) info.description = Text(n);
  for (xmlNode* n : Find(d, "/domain/devices/interface")) info.interfaces.push_back(Interface(n));
  for (const InterfaceSpec& i : info.interfaces) {
    if (!i.mac.empty()) info.macs.push_back(i.mac);
  }
  for (xmlNode* n : Find(d, "/domain/vcpu")) info.vcpus = Number(Text(n));
  for (xmlNode* n : Find(d, "/domain/memory")) info.memory_kib = MemoryKib(Number(Text(n)), Attr(n, "unit"));
  for (xmlNode* n : Find(d, "/domain/os/nvram")) info.nvram = Text(n);
  info.disks = Disks(d);
  if (info.name.empty()) return Status::InvalidArgument("domain XML", "<name> is missing");
  for (const DiskSpec& disk : info.disks) {
    if (disk.target.empty() || disk.file.empty()) {
      return Status::InvalidArgument("domain XML", "a file disk needs <source file> and <target dev>");
    }
    if (disk.format != "raw" && disk.format != "qcow2") {
      return Status::InvalidArgument("domain XML", "disk " + disk.target + ": format '" + disk.format +
                                                      "' is not supported (raw or qcow2)");
    }
  }
  return info;
}

Result<std::string> SetDisks(const std::string& xml, const std::map<std::string, DiskSpec>& disks) {
  Result<Doc> doc = ParseXml(xml);
  if (!doc.ok()) return doc.status();
  ApplyDisks(doc->get(), disks);
  return Serialize(doc->get());
}

Result<std::string> SetIdentity(const std::string& xml, const std::string& uuid, const std::string& description) {
  Result<Doc> doc = ParseXml(xml);
  if (!doc.ok()) return doc.status();
  SetTopText(doc->get(), "uuid", uuid);
  SetTopText(doc->get(), "description", description);
  return Serialize(doc->get());
}

Result<std::string> MakeCloneXml(const std::string& xml, const CloneIdentity& id) {
  Result<Doc> parsed = ParseXml(xml);
  if (!parsed.ok()) return parsed.status();
  xmlDoc* doc = parsed->get();
  SetTopText(doc, "name", id.name);
  SetTopText(doc, "uuid", id.uuid);
  SetTopText(doc, "description", id.description);
  for (xmlNode* e : Find(doc, "/domain/sysinfo/system/entry[@name='uuid']")) {
    xmlNodeSetContent(e, BAD_CAST id.uuid.c_str());
  }
  for (xmlNode* iface : Find(doc, "/domain/devices/interface")) {
    xmlNode* mac = Child(iface, "mac");
    if (!mac) mac = xmlNewChild(iface, nullptr, BAD_CAST "mac", nullptr);
    xmlSetProp(mac, BAD_CAST "address", BAD_CAST id.new_mac().c_str());
    if (xmlNode* t = Child(iface, "target")) {  // host tap device name
      xmlUnlinkNode(t);
      xmlFreeNode(t);
    }
  }
  for (xmlNode* g : Find(doc, "/domain/devices/graphics[@port]")) {
    xmlUnsetProp(g, BAD_CAST "port");
    xmlSetProp(g, BAD_CAST "autoport", BAD_CAST "yes");
  }
  for (xmlNode* s : Find(doc, "/domain/devices/channel[@type='unix']/source[@path]")) {
    xmlUnsetProp(s, BAD_CAST "path");
  }
  for (xmlNode* n : Find(doc, "/domain/os/nvram")) {
    if (id.nvram.empty()) {
      xmlUnlinkNode(n);
      xmlFreeNode(n);
    } else {
      xmlNodeSetContent(n, BAD_CAST id.nvram.c_str());
    }
  }
  ApplyDisks(doc, id.disks);
  return Serialize(doc);
}

std::string MinimalDomainXml(const std::string& name, const std::string& uuid, const std::vector<DiskSpec>& disks) {
  std::string xml = "<domain type='kvm'>\n  <name></name>\n  <uuid>" + uuid +
                    "</uuid>\n  <memory unit='MiB'>1024</memory>\n  <vcpu>1</vcpu>\n"
                    "  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n";
  for (const DiskSpec& d : disks) {
    xml += "    <disk type='file' device='disk'><driver name='qemu' type='" + d.format +
           "'/><source file=''/><target dev='" + d.target + "' bus='virtio'/></disk>\n";
  }
  xml += "  </devices>\n</domain>\n";
  // Names and paths go in through libxml2, which escapes them.
  std::map<std::string, DiskSpec> by_target;
  for (const DiskSpec& d : disks) by_target[d.target] = d;
  Result<Doc> doc = ParseXml(xml);
  SetTopText(doc->get(), "name", name);
  ApplyDisks(doc->get(), by_target);
  return Serialize(doc->get());
}

std::string RandomUuid() {
  uuid_t u;
  uuid_generate_random(u);
  char s[37];
  uuid_unparse_lower(u, s);
  return s;
}

std::string RandomMac() {
  // 52:54:00 is qemu's prefix (locally administered, unicast), as virt-clone uses.
  static thread_local std::mt19937 rng(std::random_device{}());
  char buf[18];
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", static_cast<unsigned>(rng() & 0xff),
                static_cast<unsigned>(rng() & 0xff), static_cast<unsigned>(rng() & 0xff));
  return buf;
}

}  // namespace clonekit::manager
