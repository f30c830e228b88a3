// Manager's hosts: the registry of other hypervisor hosts and what each
// says of itself now.
#include <sys/statvfs.h>

#include <future>

#include "host_uri.h"
#include "manager.h"
#include "names.h"

namespace clonekit::manager {

namespace {

constexpr std::chrono::seconds kProbeTimeout(5);

PoolSpace SpaceOf(const Pool& p) {
  PoolSpace s{p.name, p.dir};
  struct statvfs v;
  if (statvfs(p.dir.c_str(), &v) == 0) {
    s.known = true;
    s.free_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
    s.size_bytes = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  }
  return s;
}

HostFacts Facts(const std::string& uri) {
  if (uri.empty()) {
    HostFacts f;
    f.error = "no hypervisor is configured (serve --hypervisor URI)";
    return f;
  }
  return ProbeHost(uri, kProbeTimeout);
}

}  // namespace

std::vector<HostView> Manager::Hosts() {
  std::vector<HostRow> rows = store_->Hosts();
  std::vector<std::future<HostFacts>> asked;
  asked.push_back(std::async(std::launch::async, Facts, options_.hypervisor_uri));
  for (const HostRow& r : rows) asked.push_back(std::async(std::launch::async, Facts, r.uri));
  std::vector<HostView> out;
  HostView local{kLocalHost, options_.hypervisor_uri, true, asked[0].get(), {}};
  for (const Pool& p : store_->Pools()) local.pools.push_back(SpaceOf(p));
  out.push_back(std::move(local));
  for (size_t i = 0; i < rows.size(); i++) out.push_back({rows[i].name, rows[i].uri, false, asked[i + 1].get(), {}});
  return out;
}

Result<HostView> Manager::AddHost(const std::string& name, const std::string& uri) {
  if (std::string err = CheckName("host", name); !err.empty()) return Status::InvalidArgument(err);
  if (name == kLocalHost) return Status::InvalidArgument("host 'local'", "is the service's own --hypervisor");
  CLONEKIT_RETURN_IF_ERROR(CheckHostUri(uri));
  if (uri == options_.hypervisor_uri) return Status::Exists("host '" + name + "'", uri + " is the host 'local'");
  for (const HostRow& h : store_->Hosts()) {
    if (h.name == name) return Status::Exists("host '" + name + "'", "already exists");
    if (h.uri == uri) return Status::Exists("host '" + name + "'", uri + " is host '" + h.name + "'");
  }
  // Nothing is stored until its libvirt answers: a typo is not a host.
  HostView view{name, uri, false, Facts(uri), {}};
  if (!view.facts.reachable) {
    return Status::InvalidArgument("host '" + name + "'", "libvirt at " + uri + " does not answer: " + view.facts.error);
  }
  CLONEKIT_RETURN_IF_ERROR(store_->AddHost({name, uri, ""}));
  Emit("host", {{"name", name}, {"uri", uri}});
  return view;
}

Status Manager::RemoveHost(const std::string& name) {
  for (const HostRow& h : store_->Hosts()) {
    if (h.name != name) continue;
    CLONEKIT_RETURN_IF_ERROR(store_->RemoveHost(name));
    Emit("host", {{"name", name}, {"change", "removed"}});
    return Status::OK();
  }
  if (name == kLocalHost) return Status::InvalidArgument("host 'local'", "is the service's own --hypervisor: it cannot be removed");
  return Status::NotFound("no host '" + name + "'");
}

}  // namespace clonekit::manager
