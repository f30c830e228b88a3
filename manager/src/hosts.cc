// Manager's hosts: the registry of other hypervisor hosts and what each
// says of itself now.
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <optional>

#include "host_uri.h"
#include "manager.h"
#include "names.h"
#include "remote_host.h"

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

// The space of a host's pools, in one SSH round: `stat -f` of each
// directory (available blocks, block size, total blocks).
std::string RemoteSpace(const RemoteHost& remote, std::vector<PoolSpace>* pools) {
  if (pools->empty()) return "";
  std::vector<std::string> argv = {"stat", "-f", "-c", "%a %S %b", "--"};
  for (const PoolSpace& p : *pools) argv.push_back(p.dir);
  Result<std::string> out = remote.Run(argv, 10);
  if (!out.ok()) return out.status().message();
  size_t at = 0;
  for (PoolSpace& p : *pools) {
    const size_t end = out->find('\n', at);
    if (end == std::string::npos) return "host " + remote.name() + ": stat answered fewer lines than pools";
    unsigned long long avail = 0, block = 0, total = 0;
    char extra = 0;
    if (std::sscanf(out->substr(at, end - at).c_str(), "%llu %llu %llu %c", &avail, &block, &total, &extra) != 3) {
      return "host " + remote.name() + ": stat answered something else than numbers";
    }
    p.known = true;
    p.free_bytes = avail * block;
    p.size_bytes = total * block;
    at = end + 1;
  }
  return "";
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

Result<RemoteHost> Manager::RemoteOf(const std::string& host) {
  for (const HostRow& h : store_->Hosts()) {
    if (h.name != host) continue;
    Result<SshTarget> target = h.ssh.empty() ? SshTargetOfUri(h.uri) : ParseSshTarget(h.ssh);
    if (!target.ok()) return Status::InvalidArgument("host " + host, target.status().message());
    return RemoteHost(host, *target);
  }
  return Status::NotFound("no host '" + host + "'");
}

std::vector<HostView> Manager::Hosts() {
  const std::vector<HostRow> rows = store_->Hosts();
  const std::vector<Pool> pools = store_->Pools();
  std::vector<HostView> out;
  out.push_back({kLocalHost, options_.hypervisor_uri, "", true, {}, {}, ""});
  for (const HostRow& r : rows) out.push_back({r.name, r.uri, r.ssh, false, {}, {}, ""});
  for (HostView& h : out) {
    for (const Pool& p : pools) {
      if (p.OnHost(h.name)) h.pools.push_back({p.name, p.dir});
    }
  }
  // Every host at once: its libvirt, and its pools' space over SSH.
  std::vector<std::future<void>> asked;
  for (HostView& h : out) {
    std::optional<RemoteHost> remote;
    if (!h.local) {
      Result<RemoteHost> r = RemoteOf(h.name);
      if (r.ok()) remote = *r;
      else if (!h.pools.empty()) h.pools_error = r.status().message();
    }
    asked.push_back(std::async(std::launch::async, [&h, remote] {
      h.facts = Facts(h.uri);
      if (h.local) {
        for (PoolSpace& p : h.pools) p = SpaceOf({p.name, p.dir});
      } else if (remote) {
        h.pools_error = RemoteSpace(*remote, &h.pools);
      }
    }));
  }
  for (auto& a : asked) a.get();
  return out;
}

Result<HostView> Manager::AddHost(const std::string& name, const std::string& uri, const std::string& ssh) {
  if (std::string err = CheckName("host", name); !err.empty()) return Status::InvalidArgument(err);
  if (name == kLocalHost) return Status::InvalidArgument("host 'local'", "is the service's own --hypervisor");
  CLONEKIT_RETURN_IF_ERROR(CheckHostUri(uri));
  if (uri == options_.hypervisor_uri) return Status::Exists("host '" + name + "'", uri + " is the host 'local'");
  for (const HostRow& h : store_->Hosts()) {
    if (h.name == name) return Status::Exists("host '" + name + "'", "already exists");
    if (h.uri == uri) return Status::Exists("host '" + name + "'", uri + " is host '" + h.name + "'");
  }
  if (!ssh.empty()) {
    Result<SshTarget> target = ParseSshTarget(ssh);
    if (!target.ok()) return target.status();
  }
  // Nothing is stored until its libvirt answers: a typo is not a host.
  HostView view{name, uri, ssh, false, Facts(uri), {}, ""};
  if (!view.facts.reachable) {
    return Status::InvalidArgument("host '" + name + "'", "libvirt at " + uri + " does not answer: " + view.facts.error);
  }
  CLONEKIT_RETURN_IF_ERROR(store_->AddHost({name, uri, ssh, ""}));
  Emit("host", {{"name", name}, {"uri", uri}});
  return view;
}

Status Manager::RemoveHost(const std::string& name) {
  for (const HostRow& h : store_->Hosts()) {
    if (h.name != name) continue;
    for (const Pool& p : store_->Pools()) {
      if (p.OnHost(name)) return Status::Locked("host '" + name + "'", "holds pool '" + p.name + "' (pool remove it first)");
    }
    CLONEKIT_RETURN_IF_ERROR(store_->RemoveHost(name));
    Emit("host", {{"name", name}, {"change", "removed"}});
    return Status::OK();
  }
  if (name == kLocalHost) return Status::InvalidArgument("host 'local'", "is the service's own --hypervisor: it cannot be removed");
  return Status::NotFound("no host '" + name + "'");
}

}  // namespace clonekit::manager
