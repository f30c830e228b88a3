#include "domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <uuid/uuid.h>

#include <charconv>
#include <map>
#include <random>

#include "domain_model.h"

namespace clonekit::manager {

namespace {

Element* Devices(Element& d) { return d.Child("devices"); }

std::vector<DiskSpec> Disks(const Element& domain) {
  std::vector<DiskSpec> out;
  const Element* devices = domain.Child("devices");
  if (!devices) return out;
  for (const Element& d : devices->children) {
    if (d.name != "disk" || d.AttrOr("device", "disk") != "disk") continue;
    DiskSpec spec;
    if (const Element* t = d.Child("target")) spec.target = t->AttrOr("dev");
    if (const Element* s = d.Child("source")) spec.file = s->AttrOr("file");
    if (const Element* dr = d.Child("driver")) spec.format = dr->AttrOr("type");
    if (spec.format.empty()) spec.format = "raw";  // libvirt's default
    out.push_back(spec);
  }
  return out;
}

void ApplyDisks(Element& domain, const std::map<std::string, DiskSpec>& disks) {
  Element* devices = Devices(domain);
  if (!devices) return;
  for (Element& d : devices->children) {
    if (d.name != "disk" || d.AttrOr("device", "disk") != "disk") continue;
    const Element* t = d.Child("target");
    auto it = t ? disks.find(t->AttrOr("dev")) : disks.end();
    if (it == disks.end()) continue;
    d.ChildOrAdd("source").SetAttr("file", it->second.file);
    Element& dr = d.ChildOrAdd("driver");
    if (!dr.Attr("name")) dr.SetAttr("name", "qemu");
    dr.SetAttr("type", it->second.format);
  }
}

void SetText(Element& domain, const char* name, const std::string& value) { domain.ChildOrAdd(name).text = value; }

// A decimal count, 0 if the text is not one (the summary is informative).
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

InterfaceSpec Interface(const Element& iface) {
  InterfaceSpec spec;
  spec.type = iface.AttrOr("type");
  if (const Element* mac = iface.Child("mac")) spec.mac = mac->AttrOr("address");
  if (const Element* model = iface.Child("model")) spec.model = model->AttrOr("type");
  if (const Element* source = iface.Child("source")) {
    for (const char* a : {"network", "bridge"}) {
      if (spec.source.empty()) spec.source = source->AttrOr(a);
    }
  }
  return spec;
}

template <typename Fn>
Result<std::string> Rewrite(const std::string& xml, Fn&& fn) {
  Result<Element> domain = ParseDomainModel(xml);
  if (!domain.ok()) return domain.status();
  fn(*domain);
  return WriteDomainModel(*domain);
}

}  // namespace

Result<std::vector<DiskSpec>> RunningDisks(const std::string& libvirt_xml) {
  std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)> doc(
      xmlReadMemory(libvirt_xml.data(), static_cast<int>(libvirt_xml.size()), "live.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING),
      xmlFreeDoc);
  xmlNodePtr root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (!root || xmlStrcmp(root->name, BAD_CAST "domain") != 0) {
    return Status::InvalidArgument("libvirt's live definition", "is not domain XML");
  }
  const auto child = [](xmlNodePtr n, const char* name) -> xmlNodePtr {
    for (xmlNodePtr c = n ? n->children : nullptr; c; c = c->next) {
      if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0) return c;
    }
    return nullptr;
  };
  const auto attr = [](xmlNodePtr n, const char* name) {
    std::string out;
    if (xmlChar* v = n ? xmlGetProp(n, BAD_CAST name) : nullptr) {
      out = reinterpret_cast<const char*>(v);
      xmlFree(v);
    }
    return out;
  };
  std::vector<DiskSpec> disks;
  for (xmlNodePtr d = child(child(root, "devices"), "disk"); d; d = d->next) {
    if (d->type != XML_ELEMENT_NODE || xmlStrcmp(d->name, BAD_CAST "disk") != 0) continue;
    if (attr(d, "device") != "disk" || attr(d, "type") != "file") continue;
    DiskSpec spec{attr(child(d, "target"), "dev"), attr(child(d, "source"), "file"), attr(child(d, "driver"), "type")};
    if (!spec.target.empty() && !spec.file.empty()) disks.push_back(spec);
  }
  return disks;
}

Result<DomainInfo> ParseDomain(const std::string& xml) {
  Result<Element> parsed = ParseDomainModel(xml);
  if (!parsed.ok()) return parsed.status();
  const Element& d = *parsed;
  DomainInfo info;
  if (const Element* n = d.Child("name")) info.name = n->text;
  if (const Element* n = d.Child("uuid")) info.uuid = n->text;
  if (const Element* n = d.Child("description")) info.description = n->text;
  if (const Element* n = d.Child("vcpu")) info.vcpus = Number(n->text);
  if (const Element* n = d.Child("memory")) info.memory_kib = MemoryKib(Number(n->text), n->AttrOr("unit"));
  if (const Element* os = d.Child("os")) {
    if (const Element* n = os->Child("nvram")) info.nvram = n->text;
    if (!info.nvram.empty()) info.host_paths.push_back({info.nvram, "os/nvram"});
    if (const Element* l = os->Child("loader")) info.host_paths.push_back({l->text, "os/loader"});
    if (const Element* k = os->Child("kernel")) info.host_paths.push_back({k->text, "os/kernel"});
    if (const Element* i = os->Child("initrd")) info.host_paths.push_back({i->text, "os/initrd"});
  }
  if (const Element* sys = d.Child("sysinfo") ? d.Child("sysinfo")->Child("system") : nullptr) {
    for (const Element& e : sys->children) {
      if (e.AttrOr("name") == "serial") info.smbios_serial = e.text;
    }
  }
  if (const Element* g = d.Child("genid")) info.has_genid = true, info.genid = g->text;
  if (const Element* devices = d.Child("devices")) {
    for (const Element& e : devices->children) {
      if (e.name == "interface") info.interfaces.push_back(Interface(e));
      if (e.name == "tpm" && e.Child("backend") && e.Child("backend")->AttrOr("type") == "emulator") {
        info.emulated_tpm = true;
      }
      if (e.name == "disk") {
        const Element* s = e.Child("source");
        const std::string file = s ? s->AttrOr("file") : "";
        if (!file.empty()) info.host_paths.push_back({file, e.AttrOr("device", "disk") + " " + e.Child("target")->AttrOr("dev")});
      }
    }
  }
  for (const InterfaceSpec& i : info.interfaces) {
    if (!i.mac.empty()) info.macs.push_back(i.mac);
  }
  info.disks = Disks(d);
  for (const DiskSpec& disk : info.disks) {
    if (disk.format != "raw" && disk.format != "qcow2") {
      return Status::InvalidArgument("domain XML", "disk " + disk.target + ": format '" + disk.format +
                                                      "' is not supported (raw or qcow2)");
    }
  }
  return info;
}

Result<std::string> SetDisks(const std::string& xml, const std::map<std::string, DiskSpec>& disks) {
  return Rewrite(xml, [&](Element& d) { ApplyDisks(d, disks); });
}

Result<std::string> SetIdentity(const std::string& xml, const std::string& uuid, const std::string& description) {
  return Rewrite(xml, [&](Element& d) {
    SetText(d, "uuid", uuid);
    SetText(d, "description", description);
  });
}

Result<std::string> SetResources(const std::string& xml, std::optional<uint64_t> vcpus, std::optional<uint64_t> memory_kib) {
  return Rewrite(xml, [&](Element& d) {
    if (vcpus) {
      Element& v = d.ChildOrAdd("vcpu");
      v.text = std::to_string(*vcpus);
      v.RemoveAttr("current");
    }
    if (memory_kib) {
      for (const char* name : {"memory", "currentMemory"}) {
        if (Element* m = name == std::string("memory") ? &d.ChildOrAdd(name) : d.Child(name)) {
          m->text = std::to_string(*memory_kib);
          m->SetAttr("unit", "KiB");
        }
      }
    }
  });
}

Result<std::string> ForLibvirt(const std::string& xml, const std::string& libvirt_name) {
  return Rewrite(xml, [&](Element& d) { SetText(d, "name", libvirt_name); });
}

Result<std::string> MakeCloneXml(const std::string& xml, const CloneIdentity& id) {
  return Rewrite(xml, [&](Element& d) {
    SetText(d, "name", id.name);
    SetText(d, "uuid", id.uuid);
    SetText(d, "description", id.description);
    if (Element* sys = d.Child("sysinfo") ? d.Child("sysinfo")->Child("system") : nullptr) {
      for (Element& e : sys->children) {
        if (e.AttrOr("name") == "uuid") e.text = id.uuid;
        if (e.AttrOr("name") == "serial" && !id.serial.empty()) e.text = id.serial;
      }
    }
    if (Element* devices = Devices(d)) {
      for (Element& e : devices->children) {
        if (e.name == "interface") {
          if (id.new_mac) e.ChildOrAdd("mac").SetAttr("address", id.new_mac());
          e.RemoveChildren("target");  // host tap device name
        } else if (e.name == "graphics" && e.Attr("port")) {
          e.RemoveAttr("port");
          e.SetAttr("autoport", "yes");
        }
      }
    }
    if (Element* os = d.Child("os")) {
      if (id.nvram.empty()) {
        os->RemoveChildren("nvram");
      } else if (Element* n = os->Child("nvram")) {
        n->text = id.nvram;
      }
    }
    if (Element* g = d.Child("genid"); g && !id.genid.empty()) g->text = id.genid;
    ApplyDisks(d, id.disks);
  });
}

std::string MinimalDomainXml(const std::string& name, const std::string& uuid, const std::vector<DiskSpec>& disks,
                             bool kvm) {
  Element domain{"domain", {{"type", kvm ? "kvm" : "qemu"}}, "", {}};
  domain.children.push_back({"name", {}, name, {}});
  domain.children.push_back({"uuid", {}, uuid, {}});
  domain.children.push_back({"memory", {{"unit", "MiB"}}, "1024", {}});
  domain.children.push_back({"vcpu", {}, "1", {}});
  domain.children.push_back({"os", {}, "", {{"type", {{"arch", "x86_64"}}, "hvm", {}}}});
  Element devices{"devices", {}, "", {}};
  for (const DiskSpec& d : disks) {
    devices.children.push_back({"disk",
                                {{"type", "file"}, {"device", "disk"}},
                                "",
                                {{"driver", {{"name", "qemu"}, {"type", d.format}}, "", {}},
                                 {"source", {{"file", d.file}}, "", {}},
                                 {"target", {{"dev", d.target}, {"bus", "virtio"}}, "", {}}}});
  }
  domain.children.push_back(std::move(devices));
  return WriteDomainModel(domain);
}

std::string RandomUuid() {
  uuid_t u;
  uuid_generate_random(u);
  char s[37];
  uuid_unparse_lower(u, s);
  return s;
}

std::string CanonicalUuid(const std::string& uuid) {
  std::string hex;
  for (char c : uuid) {
    if (c != '-') hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (hex.size() != 32) return uuid;
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" + hex.substr(20);
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
