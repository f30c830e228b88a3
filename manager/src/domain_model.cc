#include "domain_model.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <map>
#include <memory>
#include <mutex>
#include <regex>

namespace clonekit::manager {

namespace {

// ---------------------------------------------------------- allow-list --

// Value patterns (whole-value matches). kFreeText is any single-line text up
// to 4 KiB (descriptions, titles), checked without a regex.
constexpr const char* kFreeText = "";
constexpr const char* kNum = "[0-9]{1,12}";
constexpr const char* kHex = "(0x)?[0-9a-fA-F]{1,8}";
constexpr const char* kYesNo = "yes|no";
constexpr const char* kOnOff = "on|off";
constexpr const char* kPath = "/[^\\n]{0,4095}";
constexpr const char* kLoopback = "127\\.0\\.0\\.1|::1|localhost";
constexpr const char* kWord = "[A-Za-z0-9_.-]{1,64}";
constexpr const char* kUnit = "b|bytes|KB|k|KiB|MB|M|MiB|GB|G|GiB|TB|T|TiB";

struct AttrRule {
  const char* name;
  const char* pattern;
};

struct Rule {
  const char* path;         // from the root, "" for <domain> itself
  bool many;                // may repeat under one parent
  const char* text;         // pattern for the text, nullptr = no text
  std::vector<AttrRule> attrs;
};

// Device addresses as libvirt writes them back (guest-side, harmless).
const std::vector<AttrRule> kAddress = {
    {"type", "pci|drive|virtio-serial|usb|ccid|isa"}, {"domain", kHex}, {"bus", kHex}, {"slot", kHex},
    {"function", kHex}, {"multifunction", kOnOff}, {"controller", kNum}, {"target", kNum}, {"unit", kNum},
    {"port", "[0-9.]{1,16}"}, {"iobase", kHex}, {"irq", kHex}};

// What a cloned guest needs, and nothing that names or reaches a host
// resource we do not control: no <emulator>, <seclabel>, <hostdev>,
// <filesystem>, network or block disks, file-backed serials, qemu
// namespaces, <metadata>.
const std::vector<Rule>& Rules() {
  static const std::vector<Rule> rules = {
      {"", false, nullptr, {{"type", "kvm|qemu|test"}, {"id", kNum}}},
      {"name", false, "[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", {}},
      {"uuid", false, "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}", {}},
      {"genid", false, "([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})?", {}},
      {"title", false, kFreeText, {}},
      {"description", false, kFreeText, {}},
      {"memory", false, kNum, {{"unit", kUnit}}},
      {"currentMemory", false, kNum, {{"unit", kUnit}}},
      {"vcpu", false, "[1-9][0-9]{0,2}", {{"placement", "static|auto"}, {"current", "[1-9][0-9]{0,2}"}}},
      {"iothreads", false, "[0-9]{1,2}", {}},
      {"os", false, nullptr, {{"firmware", "efi|bios"}}},
      {"os/type", false, "hvm", {{"arch", "x86_64|i686|aarch64"}, {"machine", kWord}}},
      {"os/loader", false, kPath, {{"readonly", kYesNo}, {"type", "rom|pflash"}, {"secure", kYesNo}}},
      {"os/nvram", false, kPath, {}},
      // Direct kernel boot: the files are host paths, checked to lie in a
      // pool like every other (CheckDefinition); the command line only
      // reaches the guest's kernel.
      {"os/kernel", false, kPath, {}},
      {"os/initrd", false, kPath, {}},
      {"os/cmdline", false, "[ -~]{0,1024}", {}},
      {"os/boot", true, nullptr, {{"dev", "hd|cdrom|network|fd"}}},
      {"os/bootmenu", false, nullptr, {{"enable", kYesNo}, {"timeout", kNum}}},
      {"os/smbios", false, nullptr, {{"mode", "emulate|sysinfo"}}},
      {"features", false, nullptr, {}},
      {"features/acpi", false, nullptr, {}},
      {"features/apic", false, nullptr, {}},
      {"features/pae", false, nullptr, {}},
      {"features/hap", false, nullptr, {{"state", kOnOff}}},
      {"features/pmu", false, nullptr, {{"state", kOnOff}}},
      {"features/vmport", false, nullptr, {{"state", kOnOff}}},
      {"features/smm", false, nullptr, {{"state", kOnOff}}},
      {"features/vmcoreinfo", false, nullptr, {{"state", kOnOff}}},
      {"features/ioapic", false, nullptr, {{"driver", "kvm|qemu"}}},
      {"features/kvm", false, nullptr, {}},
      {"features/kvm/hidden", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv", false, nullptr, {{"mode", "custom|passthrough"}}},
      {"features/hyperv/relaxed", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/vapic", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/spinlocks", false, nullptr, {{"state", kOnOff}, {"retries", kNum}}},
      {"features/hyperv/vpindex", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/synic", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/stimer", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/reset", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/frequencies", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/tlbflush", false, nullptr, {{"state", kOnOff}}},
      {"features/hyperv/ipi", false, nullptr, {{"state", kOnOff}}},
      {"cpu", false, nullptr,
       {{"mode", "host-model|host-passthrough|custom|maximum"}, {"match", "exact|minimum|strict"},
        {"check", "none|partial|full"}, {"migratable", kOnOff}}},
      {"cpu/model", false, kWord, {{"fallback", "allow|forbid"}}},
      {"cpu/topology", false, nullptr, {{"sockets", kNum}, {"dies", kNum}, {"cores", kNum}, {"threads", kNum}}},
      {"cpu/feature", true, nullptr, {{"policy", "force|require|optional|disable|forbid"}, {"name", kWord}}},
      {"clock", false, nullptr, {{"offset", "utc|localtime"}}},
      {"clock/timer", true, nullptr,
       {{"name", "rtc|pit|hpet|kvmclock|hypervclock|tsc"}, {"tickpolicy", "delay|catchup|merge|discard"},
        {"present", kYesNo}}},
      {"on_poweroff", false, "destroy|restart|preserve", {}},
      {"on_reboot", false, "destroy|restart|preserve", {}},
      {"on_crash", false, "destroy|restart|preserve", {}},
      {"pm", false, nullptr, {}},
      {"pm/suspend-to-mem", false, nullptr, {{"enabled", kYesNo}}},
      {"pm/suspend-to-disk", false, nullptr, {{"enabled", kYesNo}}},
      {"sysinfo", false, nullptr, {{"type", "smbios"}}},
      {"sysinfo/system", false, nullptr, {}},
      {"sysinfo/system/entry", true, "[^\\n]{0,64}",
       {{"name", "manufacturer|product|version|serial|uuid|sku|family"}}},
      {"sysinfo/bios", false, nullptr, {}},
      {"sysinfo/bios/entry", true, "[^\\n]{0,64}", {{"name", "vendor|version|date|release"}}},
      {"devices", false, nullptr, {}},
      {"devices/disk", true, nullptr, {{"type", "file"}, {"device", "disk|cdrom"}}},
      {"devices/disk/driver", false, nullptr,
       {{"name", "qemu"}, {"type", "raw|qcow2"}, {"cache", "none|writeback|writethrough|directsync|unsafe|default"},
        {"io", "native|threads|io_uring"}, {"discard", "unmap|ignore"}, {"detect_zeroes", "off|on|unmap"}}},
      {"devices/disk/source", false, nullptr, {{"file", kPath}}},
      {"devices/disk/target", false, nullptr, {{"dev", "(vd|sd|hd|xvd)[a-z]{1,3}"}, {"bus", "virtio|scsi|sata|ide|usb"}}},
      {"devices/disk/readonly", false, nullptr, {}},
      {"devices/disk/boot", false, nullptr, {{"order", kNum}}},
      {"devices/disk/serial", false, "[A-Za-z0-9_.-]{1,20}", {}},
      {"devices/disk/address", false, nullptr, kAddress},
      {"devices/controller", true, nullptr,
       {{"type", "pci|usb|sata|scsi|virtio-serial|ide|ccid"}, {"index", "[0-9]{1,3}"}, {"model", "[a-z0-9-]{1,32}"},
        {"ports", "[0-9]{1,3}"}, {"vectors", "[0-9]{1,3}"}}},
      {"devices/controller/model", false, nullptr, {{"name", "[a-z0-9-]{1,32}"}}},
      {"devices/controller/target", false, nullptr, {{"chassis", kNum}, {"port", kHex}}},
      {"devices/controller/address", false, nullptr, kAddress},
      // No "user" (slirp): it would give the guest the host's loopback.
      {"devices/interface", true, nullptr, {{"type", "network|bridge"}}},
      {"devices/interface/mac", false, nullptr, {{"address", "[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}"}}},
      {"devices/interface/source", false, nullptr, {{"network", kWord}, {"bridge", "[A-Za-z0-9_.-]{1,15}"}}},
      {"devices/interface/model", false, nullptr, {{"type", "virtio|virtio-transitional|e1000|e1000e|rtl8139"}}},
      // Only libvirt's own automatic tap names, which it makes anew.
      {"devices/interface/target", false, nullptr, {{"dev", "vnet[0-9]{1,5}"}}},
      {"devices/interface/link", false, nullptr, {{"state", "up|down"}}},
      {"devices/interface/boot", false, nullptr, {{"order", kNum}}},
      {"devices/interface/driver", false, nullptr, {{"name", "vhost|qemu"}, {"queues", "[1-9][0-9]?"}}},
      {"devices/interface/address", false, nullptr, kAddress},
      {"devices/graphics", true, nullptr,
       {{"type", "vnc|spice"}, {"port", "-1|[0-9]{1,5}"}, {"autoport", kYesNo}, {"listen", kLoopback}}},
      {"devices/graphics/listen", false, nullptr, {{"type", "address|none"}, {"address", kLoopback}}},
      {"devices/video", true, nullptr, {}},
      {"devices/video/model", false, nullptr,
       {{"type", "vga|cirrus|virtio|qxl|bochs|ramfb|none"}, {"vram", kNum}, {"ram", kNum}, {"vgamem", kNum},
        {"heads", kNum}, {"primary", kYesNo}}},
      {"devices/video/address", false, nullptr, kAddress},
      {"devices/input", true, nullptr, {{"type", "tablet|mouse|keyboard"}, {"bus", "usb|ps2|virtio"}}},
      {"devices/input/address", false, nullptr, kAddress},
      {"devices/serial", true, nullptr, {{"type", "pty"}}},
      {"devices/serial/target", false, nullptr, {{"type", "isa-serial|pci-serial|system-serial"}, {"port", kNum}}},
      {"devices/serial/target/model", false, nullptr, {{"name", "isa-serial|pci-serial|16550a"}}},
      {"devices/console", true, nullptr, {{"type", "pty"}}},
      {"devices/console/target", false, nullptr, {{"type", "serial|virtio"}, {"port", kNum}}},
      // Unix channels get a path libvirt chooses (no path attribute).
      {"devices/channel", true, nullptr, {{"type", "unix|spicevmc"}}},
      {"devices/channel/source", false, nullptr, {{"mode", "bind"}}},
      {"devices/channel/target", false, nullptr,
       {{"type", "virtio"}, {"name", kWord}, {"state", "connected|disconnected"}}},
      {"devices/channel/address", false, nullptr, kAddress},
      {"devices/rng", true, nullptr, {{"model", "virtio|virtio-transitional"}}},
      {"devices/rng/backend", false, "/dev/urandom", {{"model", "random"}}},
      {"devices/rng/rate", false, nullptr, {{"period", kNum}, {"bytes", kNum}}},
      {"devices/rng/address", false, nullptr, kAddress},
      {"devices/memballoon", false, nullptr, {{"model", "virtio|none"}, {"autodeflate", kOnOff}}},
      {"devices/memballoon/stats", false, nullptr, {{"period", kNum}}},
      {"devices/memballoon/address", false, nullptr, kAddress},
      // No 'dump' action: it writes a file on the host.
      {"devices/watchdog", false, nullptr,
       {{"model", "i6300esb|ib700|itco"}, {"action", "reset|shutdown|poweroff|pause|none"}}},
      {"devices/watchdog/address", false, nullptr, kAddress},
      {"devices/tpm", false, nullptr, {{"model", "tpm-tis|tpm-crb"}}},
      {"devices/tpm/backend", false, nullptr, {{"type", "emulator"}, {"version", "1\\.2|2\\.0"}}},
  };
  return rules;
}

// Read from the input and dropped, never passed on: libvirt finds a disk's
// backing chain in the image itself (the manager checks that it lies in the
// pools), so a caller's <backingStore> has nothing to say.
bool Dropped(const std::string& path) { return path == "devices/disk/backingStore"; }

struct CompiledRule {
  const Rule* rule;
  std::unique_ptr<std::regex> text;
  std::map<std::string, std::unique_ptr<std::regex>> attrs;  // empty pattern -> null
};

const std::map<std::string, CompiledRule>& Compiled() {
  static const std::map<std::string, CompiledRule>* compiled = [] {
    auto* m = new std::map<std::string, CompiledRule>;
    for (const Rule& r : Rules()) {
      CompiledRule c{&r, nullptr, {}};
      if (r.text && *r.text) c.text = std::make_unique<std::regex>(r.text, std::regex::ECMAScript | std::regex::optimize);
      for (const AttrRule& a : r.attrs) {
        c.attrs[a.name] = *a.pattern ? std::make_unique<std::regex>(a.pattern, std::regex::ECMAScript | std::regex::optimize)
                                     : nullptr;
      }
      (*m)[r.path] = std::move(c);
    }
    return m;
  }();
  return *compiled;
}

bool ValueOk(const std::regex* pattern, const std::string& value) {
  if (!pattern) return value.size() <= 4096 && value.find('\0') == std::string::npos;
  return value.size() <= 4096 && std::regex_match(value, *pattern);
}

// A value quoted for an error line: short, one line.
std::string Quote(const std::string& v) {
  std::string s = v.size() > 60 ? v.substr(0, 60) + "..." : v;
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "'" + s + "'";
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

struct Walker {
  size_t elements = 0;

  Status Walk(xmlNode* node, const std::string& path, Element* out) {
    const std::string where = path.empty() ? "domain" : path;
    if (++elements > 4096) return Status::InvalidArgument("domain XML", "more than 4096 elements");
    if (node->ns) {
      const std::string prefix = node->ns->prefix ? reinterpret_cast<const char*>(node->ns->prefix) + std::string(":") : "";
      const size_t slash = where.rfind('/');
      const std::string named = (slash == std::string::npos ? "" : where.substr(0, slash + 1)) + prefix +
                                reinterpret_cast<const char*>(node->name);
      return Status::InvalidArgument(named, "elements in another XML namespace are not allowed");
    }
    auto rule = Compiled().find(path);
    if (rule == Compiled().end()) return Status::InvalidArgument(where, "not allowed");
    out->name = reinterpret_cast<const char*>(node->name);
    for (xmlAttr* a = node->properties; a; a = a->next) {
      const std::string name = reinterpret_cast<const char*>(a->name);
      if (a->ns) return Status::InvalidArgument(where + "/@" + name, "attributes in another XML namespace are not allowed");
      auto ar = rule->second.attrs.find(name);
      if (ar == rule->second.attrs.end()) return Status::InvalidArgument(where + "/@" + name, "not allowed");
      xmlChar* v = xmlNodeListGetString(node->doc, a->children, 1);
      std::string value = v ? reinterpret_cast<const char*>(v) : "";
      xmlFree(v);
      if (!ValueOk(ar->second.get(), value)) {
        return Status::InvalidArgument(where + "/@" + name, "value " + Quote(value) + " is not allowed");
      }
      if (out->Attr(name)) return Status::InvalidArgument(where + "/@" + name, "appears twice");
      out->attrs.emplace_back(name, value);
    }
    std::string text;
    std::map<std::string, int> seen;
    for (xmlNode* c = node->children; c; c = c->next) {
      if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
        text += reinterpret_cast<const char*>(c->content);
      } else if (c->type == XML_ELEMENT_NODE) {
        const std::string child = reinterpret_cast<const char*>(c->name);
        const std::string child_path = path.empty() ? child : path + "/" + child;
        if (Dropped(child_path)) continue;
        auto cr = Compiled().find(child_path);
        if (cr != Compiled().end() && !cr->second.rule->many && seen[child]++ > 0) {
          return Status::InvalidArgument(child_path, "appears twice");
        }
        Element e;
        CLONEKIT_RETURN_IF_ERROR(Walk(c, child_path, &e));
        out->children.push_back(std::move(e));
      } else if (c->type == XML_ENTITY_REF_NODE) {
        return Status::InvalidArgument(where, "entity references are not allowed");
      }
      // Comments and processing instructions are dropped.
    }
    const Rule& r = *rule->second.rule;
    const bool free_text = r.text && *r.text == '\0';
    text = free_text ? text : Trim(text);
    if (!r.text) {
      if (!Trim(text).empty()) return Status::InvalidArgument(where, "text is not allowed here");
    } else {
      if (!ValueOk(rule->second.text.get(), text)) {
        return Status::InvalidArgument(where, "value " + Quote(text) + " is not allowed");
      }
      out->text = text;
    }
    return Status::OK();
  }
};

struct DocDeleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};

// Checks that need more than one element: a file disk names its type and
// target, every disk has a source, unique targets.
Status CheckDevices(const Element& domain) {
  const Element* devices = domain.Child("devices");
  if (!devices) return Status::OK();
  std::map<std::string, int> targets;
  for (const Element& d : devices->children) {
    if (d.name != "disk") continue;
    if (!d.Attr("type")) return Status::InvalidArgument("devices/disk", "type='file' is required");
    const Element* target = d.Child("target");
    if (!target || !target->Attr("dev")) return Status::InvalidArgument("devices/disk", "<target dev> is required");
    const std::string dev = target->AttrOr("dev");
    if (targets[dev]++) return Status::InvalidArgument("devices/disk", "target " + dev + " appears twice");
    const bool cdrom = d.AttrOr("device", "disk") == "cdrom";
    // A cdrom is read as raw: a qcow2 header a guest wrote into a file must
    // never name a backing file for another VM (disks' chains are checked).
    if (const Element* drv = d.Child("driver"); cdrom && drv && drv->AttrOr("type", "raw") != "raw") {
      return Status::InvalidArgument("devices/disk " + dev, "a cdrom must be raw");
    }
    const Element* source = d.Child("source");
    if (!cdrom && (!source || !source->Attr("file"))) {
      return Status::InvalidArgument("devices/disk " + dev, "<source file> is required");
    }
  }
  for (const Element& i : devices->children) {
    if (i.name != "interface") continue;
    const Element* source = i.Child("source");
    const std::string type = i.AttrOr("type");
    if (type.empty()) return Status::InvalidArgument("devices/interface", "type='network' or 'bridge' is required");
    if (source && source->Attr(type == "network" ? "bridge" : "network")) {
      return Status::InvalidArgument("devices/interface/source", "does not match the interface type '" + type + "'");
    }
  }
  return Status::OK();
}

void Build(xmlDoc* doc, xmlNode* parent, const Element& e) {
  xmlNode* n = xmlNewDocNode(doc, nullptr, BAD_CAST e.name.c_str(), nullptr);
  if (parent) {
    xmlAddChild(parent, n);
  } else {
    xmlDocSetRootElement(doc, n);
  }
  for (const auto& [k, v] : e.attrs) xmlSetProp(n, BAD_CAST k.c_str(), BAD_CAST v.c_str());
  if (!e.text.empty()) xmlAddChild(n, xmlNewDocText(doc, BAD_CAST e.text.c_str()));
  for (const Element& c : e.children) Build(doc, n, c);
}

}  // namespace

const std::string* Element::Attr(const std::string& key) const {
  for (const auto& [k, v] : attrs) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string Element::AttrOr(const std::string& key, const std::string& def) const {
  const std::string* v = Attr(key);
  return v ? *v : def;
}

void Element::SetAttr(const std::string& key, const std::string& value) {
  for (auto& [k, v] : attrs) {
    if (k == key) {
      v = value;
      return;
    }
  }
  attrs.emplace_back(key, value);
}

void Element::RemoveAttr(const std::string& key) {
  std::erase_if(attrs, [&](const auto& kv) { return kv.first == key; });
}

Element* Element::Child(const std::string& child) {
  for (Element& c : children) {
    if (c.name == child) return &c;
  }
  return nullptr;
}

const Element* Element::Child(const std::string& child) const {
  for (const Element& c : children) {
    if (c.name == child) return &c;
  }
  return nullptr;
}

Element& Element::ChildOrAdd(const std::string& child) {
  if (Element* c = Child(child)) return *c;
  children.push_back(Element{child, {}, "", {}});
  return children.back();
}

void Element::RemoveChildren(const std::string& child) {
  std::erase_if(children, [&](const Element& c) { return c.name == child; });
}

Result<Element> ParseDomainModel(const std::string& xml) {
  if (xml.size() > kMaxDomainXmlBytes) {
    return Status::InvalidArgument("domain XML", "larger than " + std::to_string(kMaxDomainXmlBytes / 1024) + " KiB");
  }
  // No network, no entity expansion, no DTD loading: definitions come
  // from users.
  std::unique_ptr<xmlDoc, DocDeleter> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA));
  if (!doc) {
    const xmlError* e = xmlGetLastError();
    std::string why = e && e->message ? e->message : "not well-formed";
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::InvalidArgument("domain XML", "not valid XML: " + why);
  }
  if (doc->intSubset || doc->extSubset) return Status::InvalidArgument("domain XML", "a DOCTYPE is not allowed");
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!root || xmlStrcmp(root->name, BAD_CAST "domain") != 0) {
    return Status::InvalidArgument("domain XML", "the root element must be <domain>");
  }
  Element domain;
  Walker w;
  CLONEKIT_RETURN_IF_ERROR(w.Walk(root, "", &domain));
  if (!domain.Child("name")) return Status::InvalidArgument("domain XML", "<name> is missing");
  CLONEKIT_RETURN_IF_ERROR(CheckDevices(domain));
  return domain;
}

std::string WriteDomainModel(const Element& domain) {
  std::unique_ptr<xmlDoc, DocDeleter> doc(xmlNewDoc(BAD_CAST "1.0"));
  Build(doc.get(), nullptr, domain);
  xmlChar* mem = nullptr;
  int size = 0;
  xmlDocDumpFormatMemory(doc.get(), &mem, &size, 1);
  std::string s(reinterpret_cast<const char*>(mem), size);
  xmlFree(mem);
  // The declaration line is not libvirt's business.
  if (s.rfind("<?xml", 0) == 0) s.erase(0, s.find('\n') + 1);
  return s;
}

}  // namespace clonekit::manager
