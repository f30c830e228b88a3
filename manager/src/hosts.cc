// Manager's hosts: the registry of other hypervisor hosts and what each
// says of itself now.
#include <sys/statvfs.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <future>
#include <optional>

#include "host_uri.h"
#include "manager.h"
#include "manager_internal.h"
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

}  // namespace

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
    uint64_t n[3] = {0, 0, 0};
    const char* c = out->data() + at;
    const char* line_end = out->data() + end;
    for (int k = 0; k < 3; k++) {
      auto [next, ec] = std::from_chars(c, line_end, n[k]);
      if (ec != std::errc() || next == c || (k < 2 && (next == line_end || *next != ' '))) {
        return "host " + remote.name() + ": stat answered something else than three numbers";
      }
      c = next + (k < 2 ? 1 : 0);
    }
    uint64_t avail = 0, total = 0;
    if (c != line_end || __builtin_mul_overflow(n[0], n[1], &avail) || __builtin_mul_overflow(n[2], n[1], &total)) {
      return "host " + remote.name() + ": stat answered something else than three numbers";
    }
    p.known = true;
    p.free_bytes = avail;
    p.size_bytes = total;
    at = end + 1;
  }
  return "";
}

namespace {

HostFacts Facts(const std::string& uri, Asking asking = Asking::kJoin) {
  if (uri.empty()) {
    HostFacts f;
    f.error = "no hypervisor is configured (serve --hypervisor URI)";
    return f;
  }
  return ProbeHost(uri, kProbeTimeout, asking);
}

}  // namespace

bool Manager::HostAnswers(const std::string& host) {
  if (host == kLocalHost) return true;
  std::lock_guard<std::mutex> lock(answers_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (auto it = answers_.find(host); it != answers_.end() && now - it->second.first < kHostsFresh) return it->second.second;
  std::string uri;
  for (const HostRow& h : store_->Hosts()) {
    if (h.name == host) uri = h.uri;
  }
  const bool answered = !uri.empty() && Facts(uri).reachable;
  answers_[host] = {std::chrono::steady_clock::now(), answered};
  return answered;
}

Status Manager::HostReady(const std::string& host) {
  if (HostAnswers(host)) return Status::OK();
  return Status::Locked("host '" + host + "'", "its libvirt does not answer now; try again when it does");
}

Result<RemoteHost> Manager::RemoteOf(const std::string& host) {
  for (const HostRow& h : store_->Hosts()) {
    if (h.name != host) continue;
    Result<SshTarget> target = h.ssh.empty() ? SshTargetOfUri(h.uri) : ParseSshTarget(h.ssh);
    if (!target.ok()) return Status::InvalidArgument("host " + host, target.status().message());
    return RemoteHost(host, *target);
  }
  return Status::NotFound("no host '" + host + "'");
}

// What every host says is asked at most once per kHostsFresh unless an
// admin asks (fresh): other callers in between (any token holder may ask)
// get the last answer, and one round of probes and SSH runs at a time,
// however many ask.
std::vector<HostView> Manager::Hosts(bool fresh) {
  std::lock_guard<std::mutex> asking(hosts_mu_);
  if (!fresh && hosts_cache_ && std::chrono::steady_clock::now() - hosts_cache_time_ < kHostsFresh) return *hosts_cache_;
  hosts_cache_ = AskHosts();
  hosts_cache_time_ = std::chrono::steady_clock::now();
  return *hosts_cache_;
}

void Manager::ForgetHosts() {
  std::lock_guard<std::mutex> asking(hosts_mu_);
  hosts_cache_.reset();
}

std::vector<HostView> Manager::AskHosts() {
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
  std::lock_guard<std::mutex> registry(registry_mu_);
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
  ForgetWhatIsKnownOf(name);  // (of an earlier host of this name)
  Emit("host", {{"name", name}, {"uri", uri}});
  return view;
}

Status Manager::RemoveHost(const std::string& name) {
  std::lock_guard<std::mutex> registry(registry_mu_);
  for (const HostRow& h : store_->Hosts()) {
    if (h.name != name) continue;
    for (const VmRow& vm : store_->Vms()) {
      if (vm.host == name) return Status::Locked("host '" + name + "'", "holds VM '" + vm.name + "' (delete it first)");
    }
    for (const Pool& p : store_->Pools()) {
      if (p.OnHost(name)) return Status::Locked("host '" + name + "'", "holds pool '" + p.name + "' (pool remove it first)");
    }
    for (const JobRow& job : store_->Jobs()) {
      if (job.host == name && job.cleanup_pending) {
        return Status::Locked("host '" + name + "'", "still holds partial files of job " + std::to_string(job.id) +
                                                         " (removed when it answers again)");
      }
    }
    CLONEKIT_RETURN_IF_ERROR(store_->RemoveHost(name));
    ForgetWhatIsKnownOf(name);
    Emit("host", {{"name", name}, {"change", "removed"}});
    return Status::OK();
  }
  if (name == kLocalHost) return Status::InvalidArgument("host 'local'", "is the service's own --hypervisor: it cannot be removed");
  return Status::NotFound("no host '" + name + "'");
}

void Manager::ForgetWhatIsKnownOf(const std::string& host) {
  std::shared_ptr<Hypervisor> dropped;  // released outside the lock (a call under way keeps its own)
  {
    std::lock_guard<std::mutex> lock(remote_hv_mu_);
    if (auto it = remote_hv_.find(host); it != remote_hv_.end()) {
      dropped = std::move(it->second);
      remote_hv_.erase(it);
    }
  }
  {
    std::lock_guard<std::mutex> lock(answers_mu_);
    answers_.erase(host);
  }
  ForgetHosts();
}

Result<ForgottenHost> Manager::ForgetHost(const std::string& name) {
  if (name == kLocalHost) return Status::InvalidArgument("host 'local'", "is the service's own --hypervisor: it cannot be removed");
  std::lock_guard<std::mutex> plan_lock(plan_mu_);  // no clone planned onto it meanwhile
  std::lock_guard<std::mutex> registry(registry_mu_);
  std::optional<HostRow> row;
  for (HostRow& h : store_->Hosts()) {
    if (h.name == name) row = std::move(h);
  }
  if (!row) return Status::NotFound("no host '" + name + "'");
  ForgetWhatIsKnownOf(name);
  // Asked afresh: not the last answer, nor that of an attempt under way,
  // which may have begun before the host came back.
  const HostFacts facts = Facts(row->uri, Asking::kAfresh);
  if (facts.reachable) {
    return Status::Locked("host '" + name + "'",
                          "answers: --forget is for a host that is gone; delete its VMs and remove its pools instead");
  }
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    for (const auto& [id, job] : running_) {
      const ClonePlan& p = job->plan;
      if (p.host == name || p.source_host == name || p.files_host == name) {
        return Status::Locked("host '" + name + "'", "clone job " + std::to_string(id) + " uses it; cancel it first");
      }
    }
  }
  ForgottenHost forgotten;
  forgotten.name = name;
  forgotten.why = facts.error;
  std::vector<int64_t> vm_ids;
  std::vector<JobRow> jobs;
  Status written = store_->Write([&]() -> Status {
    Result<std::vector<VmRow>> vms = store_->CheckedVms();
    Result<std::vector<Pool>> pools = store_->CheckedPools();
    Result<std::vector<JobRow>> all_jobs = store_->CheckedJobs();
    if (!vms.ok()) return vms.status();
    if (!pools.ok()) return pools.status();
    if (!all_jobs.ok()) return all_jobs.status();
    for (const VmRow& vm : *vms) {
      if (vm.host != name) continue;
      CLONEKIT_RETURN_IF_ERROR(store_->DeleteVm(vm.id));  // (its snapshots go with it)
      forgotten.vms.push_back(vm.name);
      vm_ids.push_back(vm.id);
    }
    for (const Pool& p : *pools) {
      if (!p.OnHost(name)) continue;
      CLONEKIT_RETURN_IF_ERROR(store_->RemovePool(p.name));
      if (p.hosts.size() > 1) {
        Pool shared = p;
        std::erase(shared.hosts, name);
        CLONEKIT_RETURN_IF_ERROR(store_->AddPool(shared));
      }
      forgotten.pools.push_back(p.name);
    }
    for (JobRow job : *all_jobs) {
      if (job.host != name || !job.cleanup_pending) continue;
      job.cleanup_pending = false;
      job.error += "; its partial files on host '" + name + "' were left there when the host was forgotten";
      CLONEKIT_RETURN_IF_ERROR(store_->UpdateJob(job));
      forgotten.jobs.push_back(job.id);
      jobs.push_back(job);
    }
    return store_->RemoveHost(name);
  });
  if (!written.ok()) return written;
  ForgetWhatIsKnownOf(name);
  for (int64_t id : vm_ids) Emit("vm", {{"id", id}, {"change", "deleted"}});
  for (const JobRow& job : jobs) {
    Emit("job", {{"id", job.id}, {"state", JobStateName(job.state)}, {"error", job.error}, {"cleanup_pending", false}});
  }
  Emit("host", {{"name", name}, {"change", "removed"}});
  return forgotten;
}

}  // namespace clonekit::manager
