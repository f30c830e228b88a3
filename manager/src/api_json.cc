#include "api_json.h"

#include "host_uri.h"

namespace clonekit::manager {

namespace {

Status Wrong(const std::string& field, const std::string& what) {
  return Status::InvalidArgument("field '" + field + "'", what);
}

// Reads an optional string field: absent leaves *out as it is.
Status OptString(const json& b, const std::string& key, std::string* out, const std::string& path = "") {
  auto it = b.find(key);
  if (it == b.end()) return Status::OK();
  if (!it->is_string()) return Wrong(path + key, "must be a string");
  *out = it->get<std::string>();
  return Status::OK();
}

Status ReqString(const json& b, const std::string& key, std::string* out) {
  if (!b.contains(key)) return Wrong(key, "is required");
  CLONEKIT_RETURN_IF_ERROR(OptString(b, key, out));
  if (out->empty()) return Wrong(key, "is required (empty)");
  return Status::OK();
}

Status OptBool(const json& b, const std::string& key, bool* out) {
  auto it = b.find(key);
  if (it == b.end()) return Status::OK();
  if (!it->is_boolean()) return Wrong(key, "must be true or false");
  *out = it->get<bool>();
  return Status::OK();
}

// A whole number in [lo, hi], or absent.
Status OptCount(const json& b, const std::string& key, uint64_t lo, uint64_t hi, std::optional<uint64_t>* out) {
  auto it = b.find(key);
  if (it == b.end()) return Status::OK();
  if (!it->is_number_unsigned() || it->get<uint64_t>() < lo || it->get<uint64_t>() > hi) {
    return Status::InvalidArgument("field '" + key + "'", "must be a whole number from " + std::to_string(lo) + " to " +
                                                              std::to_string(hi));
  }
  *out = it->get<uint64_t>();
  return Status::OK();
}

}  // namespace

Result<PoolRequest> DecodePool(const json& b) {
  PoolRequest r;
  CLONEKIT_RETURN_IF_ERROR(ReqString(b, "name", &r.name));
  CLONEKIT_RETURN_IF_ERROR(ReqString(b, "dir", &r.dir));
  if (auto it = b.find("hosts"); it != b.end()) {
    if (!it->is_array() || it->empty() || it->size() > 64) return Wrong("hosts", "must be a list of 1-64 host names");
    for (const json& h : *it) {
      if (!h.is_string()) return Wrong("hosts", "must be a list of host names");
      r.hosts.push_back(h.get<std::string>());
    }
  }
  return r;
}

Result<HostRequest> DecodeHost(const json& b) {
  HostRequest r;
  CLONEKIT_RETURN_IF_ERROR(ReqString(b, "name", &r.name));
  CLONEKIT_RETURN_IF_ERROR(ReqString(b, "uri", &r.uri));
  CLONEKIT_RETURN_IF_ERROR(OptString(b, "ssh", &r.ssh));
  return r;
}

Result<DefineRequest> DecodeDefine(const json& b) {
  DefineRequest r;
  CLONEKIT_RETURN_IF_ERROR(ReqString(b, "xml", &r.xml));
  CLONEKIT_RETURN_IF_ERROR(OptString(b, "namespace", &r.ns));
  CLONEKIT_RETURN_IF_ERROR(OptString(b, "description", &r.description));
  return r;
}

Result<ImportRequest> DecodeImport(const json& b) {
  ImportRequest r;
  CLONEKIT_RETURN_IF_ERROR(ReqString(b, "name", &r.name));
  CLONEKIT_RETURN_IF_ERROR(OptString(b, "namespace", &r.ns));
  auto it = b.find("disks");
  if (it == b.end() || !it->is_array() || it->empty()) return Wrong("disks", "must be a list of image paths");
  for (size_t i = 0; i < it->size(); i++) {
    if (!(*it)[i].is_string()) return Wrong("disks[" + std::to_string(i) + "]", "must be a string");
    r.disks.push_back((*it)[i].get<std::string>());
  }
  return r;
}

Result<UpdateRequest> DecodeUpdate(const json& b) {
  UpdateRequest r;
  std::string s;
  if (b.contains("xml")) {
    CLONEKIT_RETURN_IF_ERROR(ReqString(b, "xml", &s));
    r.xml = s;
  }
  if (b.contains("description")) {
    s.clear();
    CLONEKIT_RETURN_IF_ERROR(OptString(b, "description", &s));
    r.description = s;
  }
  CLONEKIT_RETURN_IF_ERROR(OptCount(b, "vcpus", 1, 512, &r.vcpus));
  CLONEKIT_RETURN_IF_ERROR(OptCount(b, "memory_mib", 16, 16u << 20, &r.memory_mib));
  if ((r.vcpus || r.memory_mib) && r.xml) {
    return Status::InvalidArgument("field 'xml'", "give either the definition or vcpus/memory_mib, not both");
  }
  return r;
}

Result<bool> DecodeStop(const json& b) {
  bool force = false;
  CLONEKIT_RETURN_IF_ERROR(OptBool(b, "force", &force));
  return force;
}

Result<std::string> DecodeSnapshot(const json& b) {
  std::string name;
  CLONEKIT_RETURN_IF_ERROR(ReqString(b, "name", &name));
  return name;
}

// "name" may be left out (the default name); when given it must be a
// non-empty string (seed 004: the name is required).
Result<CloneRequest> DecodeClone(const json& b) {
  CloneRequest r;
  if (b.contains("name")) CLONEKIT_RETURN_IF_ERROR(ReqString(b, "name", &r.name));
  CLONEKIT_RETURN_IF_ERROR(OptString(b, "snapshot", &r.snapshot));
  if (b.contains("namespace")) CLONEKIT_RETURN_IF_ERROR(ReqString(b, "namespace", &r.ns));
  if (b.contains("host")) CLONEKIT_RETURN_IF_ERROR(ReqString(b, "host", &r.host));
  if (b.contains("description")) {
    std::string d;
    CLONEKIT_RETURN_IF_ERROR(OptString(b, "description", &d));
    r.description = d;
  }
  CLONEKIT_RETURN_IF_ERROR(OptBool(b, "start", &r.start));
  CLONEKIT_RETURN_IF_ERROR(OptBool(b, "live", &r.live));
  bool instant = false, linked = false;
  CLONEKIT_RETURN_IF_ERROR(OptBool(b, "instant", &instant));
  CLONEKIT_RETURN_IF_ERROR(OptBool(b, "linked", &linked));
  if (instant && linked) return Wrong("instant", "and \"linked\" cannot both be true (an instant clone ends standalone)");
  r.mode = instant ? JobMode::kInstant : linked ? JobMode::kLinked : JobMode::kFull;
  if (auto it = b.find("generalize"); it != b.end()) {
    // "default,-hostname" as the CLI spells it, or {item: true|false, ...}
    // over the base set (generalize.h).
    if (it->is_string()) {
      Result<GeneralizeItems> items = ParseGeneralize(it->get<std::string>());
      if (!items.ok()) return items.status();
      r.generalize = *items;
    } else if (it->is_object()) {
      for (const auto& [name, on] : it->items()) {
        if (!on.is_boolean()) return Wrong("generalize." + name.substr(0, 64), "must be true or false");
        std::optional<GeneralizeItem> item = GeneralizeItemOf(name);
        if (!item) return Wrong("generalize." + name.substr(0, 64), "is not an item (see docs/api.md, \"Generalize\")");
        r.generalize.Set(*item, on.get<bool>());
      }
    } else {
      return Wrong("generalize", "must be a string (\"default\", \"none\", \"ITEM,-ITEM\") or an object {item: true|false}");
    }
  }
  if (auto it = b.find("disks"); it != b.end()) {
    if (!it->is_object()) return Wrong("disks", "must be an object of target: {pool, format}");
    for (const auto& [target, d] : it->items()) {
      const std::string path = "disks." + target + ".";
      if (!d.is_object()) return Wrong("disks." + target, "must be an object {pool, format}");
      CloneRequest::Disk disk;
      CLONEKIT_RETURN_IF_ERROR(OptString(d, "pool", &disk.pool, path));
      CLONEKIT_RETURN_IF_ERROR(OptString(d, "format", &disk.format, path));
      r.disks[target] = disk;
    }
  }
  return r;
}

json EncodePool(const Pool& p) { return json{{"name", p.name}, {"dir", p.dir}, {"hosts", p.hosts}}; }

json EncodePools(const std::vector<Pool>& pools) {
  json out = json::array();
  for (const Pool& p : pools) out.push_back(EncodePool(p));
  return out;
}

json EncodeHost(const HostView& h) {
  json pools = json::array();
  for (const PoolSpace& p : h.pools) {
    json one = {{"name", p.name}, {"dir", p.dir}};
    one["free_bytes"] = p.known ? json(p.free_bytes) : json(nullptr);
    one["size_bytes"] = p.known ? json(p.size_bytes) : json(nullptr);
    pools.push_back(one);
  }
  return {{"name", h.name},
          {"uri", h.uri},
          {"ssh", h.ssh},
          {"local", h.local},
          {"reachable", h.facts.reachable},
          {"libvirt_version", h.facts.libvirt_version},
          {"hostname", h.facts.hostname},
          {"error", h.facts.error},
          {"pools", pools},
          {"pools_error", h.pools_error}};
}

json EncodeForgottenHost(const ForgottenHost& f) {
  return {{"name", f.name}, {"forgotten", true}, {"vms", f.vms}, {"pools", f.pools}, {"jobs", f.jobs}, {"why", f.why}};
}

json EncodeHosts(const std::vector<HostView>& hosts) {
  json out = json::array();
  for (const HostView& h : hosts) out.push_back(EncodeHost(h));
  return out;
}

namespace {

json EncodeDisks(const std::vector<DiskSpec>& disks) {
  json out = json::array();
  for (const DiskSpec& d : disks) out.push_back({{"target", d.target}, {"file", d.file}, {"format", d.format}});
  return out;
}

json EncodeAction(const Action& a) {
  return a.allowed ? json{{"allowed", true}} : json{{"allowed", false}, {"reason", a.reason}};
}

}  // namespace

json EncodeSummary(const DomainInfo& info) {
  json nics = json::array();
  for (const InterfaceSpec& i : info.interfaces) {
    nics.push_back({{"mac", i.mac}, {"type", i.type}, {"source", i.source}, {"model", i.model}});
  }
  return {{"vcpus", info.vcpus}, {"memory_mib", info.memory_kib / 1024}, {"disks", EncodeDisks(info.disks)}, {"nics", nics}};
}

json EncodeVm(const VmView& v) {
  const VmRow& vm = v.vm;
  const bool cloning = vm.status == VmStatus::kCloning;
  json j{{"id", vm.id}, {"uuid", vm.uuid}, {"name", vm.name}, {"namespace", vm.ns}, {"host", vm.host},
         {"description", vm.description}, {"created", vm.created}};
  j["status"] = cloning ? "cloning" : !v.locked_by.empty() ? "locked" : PowerDetailName(v.detail);
  j["power"] = PowerName(PowerOf(v.detail));
  j["locked_by"] = v.locked_by;
  j["read_by"] = v.read_by;
  j["actions"] = {{"start", EncodeAction(v.actions.start)},       {"shutdown", EncodeAction(v.actions.shutdown)},
                  {"force_off", EncodeAction(v.actions.force_off)}, {"clone", EncodeAction(v.actions.clone)},
                  {"edit", EncodeAction(v.actions.edit)},         {"delete", EncodeAction(v.actions.remove)},
                  {"cancel_clone", EncodeAction(v.actions.cancel_clone)}, {"flatten", EncodeAction(v.actions.flatten)}};
  j["linked_to"] = v.linked_to ? json{{"vm", v.linked_to->vm}, {"vm_name", v.linked_to->vm_name},
                                      {"snapshot", v.linked_to->snapshot}}
                               : json(nullptr);
  if (v.job) {
    j["job"] = *v.job;
    j["percent"] = v.percent;
    j["queued"] = v.queued;
    if (v.queue_position) j["queue_position"] = *v.queue_position;
  }
  j["disks"] = v.info ? EncodeDisks(v.info->disks) : json::array();
  if (v.info) j["macs"] = v.info->macs;
  j["snapshots"] = v.snapshots;
  if (v.full) {
    j["xml"] = vm.xml;
    if (v.info) j["summary"] = EncodeSummary(*v.info);
  }
  return j;
}

json EncodeVms(const std::vector<VmView>& vms) {
  json out = json::array();
  for (const VmView& v : vms) out.push_back(EncodeVm(v));
  return out;
}

namespace {

json EncodeItems(const GeneralizeItems& items) {
  json out = json::array();
  for (GeneralizeItem i : items.Items()) out.push_back(GeneralizeItemName(i));
  return out;
}

json EncodeChanges(const std::vector<IdentityChange>& changes) {
  json out = json::array();
  for (const IdentityChange& c : changes) {
    out.push_back({{"item", GeneralizeItemName(c.item)}, {"disk", c.disk}, {"path", c.path}, {"change", c.change}});
  }
  return out;
}

// The Clone dialog's "Make it a new machine" section: every item, on or
// off by default, and for a host item whether this definition has it.
// elsewhere: the clone is made on another host than the source's, or of a
// VM on another host than this service's (only the definition's items
// apply then: the guest's are changed in images here).
json EncodeGeneralizeChoices(const DomainInfo& info, bool elsewhere) {
  json out = json::array();
  for (GeneralizeItem i : kAllGeneralizeItems) {
    json item{{"item", GeneralizeItemName(i)}, {"side", IsGuestItem(i) ? "guest" : "host"}, {"default", OnByDefault(i)}};
    std::string missing;
    if (elsewhere && IsGuestItem(i)) missing = "the guest is changed only in images on this service's own host";
    if (i == GeneralizeItem::kSmbiosSerial && info.smbios_serial.empty()) missing = "the definition sets no SMBIOS serial";
    if (i == GeneralizeItem::kGenid && !info.has_genid) missing = "the definition has no <genid>";
    if (i == GeneralizeItem::kTpm && !info.emulated_tpm) missing = "the definition has no emulated TPM";
    if (i == GeneralizeItem::kMacAddresses && info.interfaces.empty()) missing = "the definition has no network interface";
    item["applies"] = missing.empty();
    if (!missing.empty()) item["reason"] = missing;
    out.push_back(item);
  }
  return out;
}

}  // namespace

json EncodeJob(const JobView& v) {
  const JobRow& j = v.job;
  json out{{"id", j.id},
           {"source_vm", j.source_vm ? json(j.source_vm) : json(nullptr)},
           {"clone_vm", j.clone_vm ? json(j.clone_vm) : json(nullptr)},
           {"clone_name", j.clone_name},
           {"snapshot", j.snapshot.empty() ? json(nullptr) : json(j.snapshot)},
           {"state", JobStateName(j.state)},
           {"percent", j.percent},
           {"done_bytes", j.done_bytes},
           {"total_bytes", j.total_bytes},
           {"error", j.error},
           {"error_kind", j.error_kind},
           {"outputs", j.outputs},
           {"files_host", j.host},  // where its outputs are ("local": here, or a pool shared with the clone's host)
           {"cleanup_pending", j.cleanup_pending},
           {"source_was_running", j.source_was_running},
           {"live", j.live},
           {"took_snapshot", j.took_snapshot},
           {"mode", JobModeName(j.mode)},
           {"generalize", EncodeItems(j.generalize)},
           {"identity_changes", EncodeChanges(j.identity_changes)},
           {"created", j.created},
           {"finished", j.finished}};
  if (v.queue_position) out["queue_position"] = *v.queue_position;
  return out;
}

json EncodeJobs(const std::vector<JobView>& jobs) {
  json out = json::array();
  for (const JobView& j : jobs) out.push_back(EncodeJob(j));
  return out;
}

json EncodeSnapshots(const std::vector<SnapshotView>& snapshots) {
  json out = json::array();
  for (const SnapshotView& s : snapshots) {
    out.push_back({{"name", s.name}, {"created", s.created}, {"disks", EncodeDisks(s.disks)},
                   {"consistency", ConsistencyName(s.consistency)}});
  }
  return out;
}

json EncodeDefaults(const CloneDefaults& d) {
  json disks = json::array();
  for (const DiskDefault& x : d.disks) {
    disks.push_back({{"target", x.target}, {"source", x.source}, {"source_format", x.source_format},
                     {"pool", x.pool}, {"format", x.format}});
  }
  return json{{"source", {{"id", d.source_id}, {"name", d.source_name}, {"namespace", d.source_ns}, {"host", d.source_host}}},
              {"snapshot", d.snapshot.empty() ? json(nullptr) : json(d.snapshot)},
              {"name", d.name},
              {"namespace", d.ns},
              {"host", d.host},
              {"description", d.description},
              {"start", d.start},
              {"source_running", d.source_running},
              {"source_stops", d.source_stops},
              {"disks", disks},
              {"summary", EncodeSummary(d.summary)},
              {"generalize", EncodeGeneralizeChoices(d.summary, d.host != d.source_host || d.source_host != kLocalHost)},
              {"configuration", d.configuration}};
}

int HttpCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kCorruption:
    case Status::Code::kNotSupported: return 400;
    case Status::Code::kPermissionDenied: return 403;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kLocked:
    case Status::Code::kExists: return 409;
    case Status::Code::kBusy: return 429;
    case Status::Code::kNoSpace: return 507;
    default: return 500;
  }
}

const char* ErrorKind(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return "";
    case Status::Code::kInvalidArgument: return "invalid";
    case Status::Code::kCorruption: return "corrupt_image";
    case Status::Code::kNotSupported: return "not_supported";
    case Status::Code::kPermissionDenied: return "forbidden";
    case Status::Code::kNotFound: return "not_found";
    case Status::Code::kLocked: return "locked";
    case Status::Code::kExists: return "exists";
    case Status::Code::kBusy: return "busy";
    case Status::Code::kNoSpace: return "no_space";
    case Status::Code::kCancelled: return "cancelled";
    case Status::Code::kIOError: return "io_error";
  }
  return "internal";
}

json ErrorJson(const Status& s) { return json{{"error", s.message()}, {"error_kind", ErrorKind(s)}}; }

}  // namespace clonekit::manager
