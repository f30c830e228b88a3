#include "hypervisor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>

namespace clonekit::manager {

const char* PowerDetailName(PowerDetail d) {
  switch (d) {
    case PowerDetail::kRunning: return "running";
    case PowerDetail::kPaused: return "paused";
    case PowerDetail::kStopping: return "stopping";
    case PowerDetail::kCrashed: return "crashed";
    case PowerDetail::kSuspended: return "suspended";
    case PowerDetail::kShutoff: return "shutoff";
    case PowerDetail::kUndefined: return "undefined";
    case PowerDetail::kUnreachable: return "unreachable";
  }
  return "undefined";
}

const char* PowerName(Power p) {
  return p == Power::kRunning ? "running" : p == Power::kShutoff ? "shutoff" : "undefined";
}

namespace {

std::string LastError() {
  virErrorPtr e = virGetLastError();
  return e && e->message ? e->message : "unknown libvirt error";
}

class NoHypervisor final : public Hypervisor {
 public:
  bool available() const override { return false; }
  std::string uri() const override { return ""; }
  PowerDetail Detail(const DomainRef&) override { return PowerDetail::kShutoff; }
  std::optional<std::string> UuidOfName(const std::string&) override { return std::nullopt; }
  bool KnowsUuid(const std::string&) override { return false; }
  Status Define(const std::string&) override { return Status::OK(); }
  Status Undefine(const DomainRef&) override { return Status::OK(); }
  Status Start(const DomainRef& vm) override {
    return Status::InvalidArgument("VM '" + vm.name + "'", "cannot run: no hypervisor is configured (serve --hypervisor URI)");
  }
  Status Shutdown(const DomainRef&, int) override { return Status::OK(); }
  Status Destroy(const DomainRef&) override { return Status::OK(); }
  Status SnapshotDisks(const DomainRef& vm, const std::vector<DiskOverlay>&, bool*) override {
    return Status::InvalidArgument("VM '" + vm.name + "'", "cannot take a live snapshot: no hypervisor is configured");
  }
  Status MirrorDisk(const DomainRef& vm, const std::string&, const std::string&) override {
    return Status::InvalidArgument("VM '" + vm.name + "'", "cannot switch a running disk: no hypervisor is configured");
  }
  Status PivotDisk(const DomainRef& vm, const std::string&) override {
    return Status::InvalidArgument("VM '" + vm.name + "'", "cannot switch a running disk: no hypervisor is configured");
  }
  Result<std::string> DomainXml(const DomainRef& vm, bool) override { return Status::NotFound("VM '" + vm.name + "': no hypervisor"); }
  Result<DiskJobProgress> DiskJob(const DomainRef&, const std::string&) override { return DiskJobProgress{}; }
  Status AbortDiskJob(const DomainRef&, const std::string&) override { return Status::OK(); }
};

// An XML attribute value (paths and disk names come from checked names,
// but the snapshot XML must not be able to break out whatever they hold).
std::string XmlAttr(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// How long a guest agent may take to answer (the freeze included) before a
// quiesced snapshot gives up; libvirt's default is to wait forever.
constexpr int kAgentTimeoutSeconds = 10;

struct DomainDeleter {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Domain = std::unique_ptr<virDomain, DomainDeleter>;

class Libvirt final : public Hypervisor {
 public:
  // remote: another host's (reconnects back off; closing does not wait).
  Libvirt(virConnectPtr conn, std::string uri, bool remote = false)
      : conn_(conn), uri_(std::move(uri)), remote_(remote) {}
  ~Libvirt() override {
    if (!conn_) return;
    if (!remote_) {
      virConnectClose(conn_);
      return;
    }
    // Another host's: closing asks it, with no deadline, and to a host that
    // is gone never returns (host remove --forget hung there, and so would
    // whatever request dropped the last reference). On a thread of its own,
    // left behind. With no thread to be had it is left open: closing it
    // here could hang this caller, and it may hold the jobs' lock.
    try {
      std::thread([conn = conn_] { virConnectClose(conn); }).detach();
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "clonekit: %s: connection left open: cannot start a thread to close it: %s\n", uri_.c_str(),
                   e.what());
    }
  }

  bool available() const override { return true; }
  std::string uri() const override { return uri_; }

  PowerDetail Detail(const DomainRef& vm) override {
    std::lock_guard<std::mutex> lock(mu_);
    Domain d = Lookup(vm.uuid);
    if (!d) return conn_ ? PowerDetail::kUndefined : PowerDetail::kUnreachable;
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    if (virDomainGetState(d.get(), &state, &reason, 0) < 0) return PowerDetail::kRunning;
    switch (state) {
      case VIR_DOMAIN_PAUSED: return PowerDetail::kPaused;
      case VIR_DOMAIN_SHUTDOWN: return PowerDetail::kStopping;
      case VIR_DOMAIN_CRASHED: return PowerDetail::kCrashed;
      case VIR_DOMAIN_PMSUSPENDED: return PowerDetail::kSuspended;
      case VIR_DOMAIN_SHUTOFF: return PowerDetail::kShutoff;
      default: return PowerDetail::kRunning;
    }
  }

  std::optional<std::string> UuidOfName(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    Connect();
    Domain d(conn_ ? virDomainLookupByName(conn_, name.c_str()) : nullptr);
    if (!d) return std::nullopt;
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(d.get(), uuid) < 0) return std::nullopt;
    return std::string(uuid);
  }

  bool KnowsUuid(const std::string& uuid) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Lookup(uuid) != nullptr;
  }

  Status Define(const std::string& xml) override {
    std::lock_guard<std::mutex> lock(mu_);
    Connect();
    Domain d(conn_ ? virDomainDefineXML(conn_, xml.c_str()) : nullptr);
    if (!d) return Status::IOError(uri_, "define: " + Why());
    return Status::OK();
  }

  Status Undefine(const DomainRef& vm) override {
    return WithDomain(vm, "undefine", [](virDomainPtr d) {
      // The NVRAM file stays: the definition names it, so libvirt would
      // unlink whatever file a caller put there; clonekit removes only the
      // NVRAM copies it made itself. Drivers without NVRAM or managed save
      // (the test driver) refuse the flags.
      int rc = virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_KEEP_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
      return rc == 0 ? 0 : virDomainUndefine(d);
    }, /*missing_ok=*/true);
  }

  Status Start(const DomainRef& vm) override {
    return WithDomain(vm, "start", [](virDomainPtr d) { return virDomainIsActive(d) == 1 ? 0 : virDomainCreate(d); });
  }

  Status Destroy(const DomainRef& vm) override {
    return WithDomain(vm, "destroy", [](virDomainPtr d) { return virDomainIsActive(d) == 1 ? virDomainDestroy(d) : 0; });
  }

  Status SnapshotDisks(const DomainRef& vm, const std::vector<DiskOverlay>& overlays, bool* quiesced) override {
    std::string xml = "<domainsnapshot><disks>";
    for (const DiskOverlay& o : overlays) {
      xml += "<disk name='" + XmlAttr(o.target) + "' snapshot='external' type='file'><driver type='qcow2'/><source file='" +
             XmlAttr(o.file) + "'/></disk>";
    }
    xml += "</disks></domainsnapshot>";
    // Our own overlays (REUSE_EXT: made O_EXCL inside the pool, with a
    // relative backing name), disks only, all or none, and no libvirt
    // snapshot object: clonekit's store is the record.
    const unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
                           VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA | VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT;
    std::lock_guard<std::mutex> lock(mu_);
    Domain d = Lookup(vm.uuid);
    if (!d) return Status::IOError("VM '" + vm.name + "'", "snapshot: " + LastError());
    if (virDomainIsActive(d.get()) != 1) {
      // Off (a VM on another host): nothing to freeze; libvirt's
      // definition names the overlays.
      virDomainSnapshotPtr s = virDomainSnapshotCreateXML(d.get(), xml.c_str(), flags);
      if (!s) return Status::IOError("VM '" + vm.name + "'", "snapshot: " + LastError());
      virDomainSnapshotFree(s);
      *quiesced = false;
      return Status::OK();
    }
    virDomainAgentSetResponseTimeout(d.get(), kAgentTimeoutSeconds, 0);  // fails without an agent channel: fine
    if (virDomainSnapshotPtr s = virDomainSnapshotCreateXML(d.get(), xml.c_str(), flags | VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE)) {
      virDomainSnapshotFree(s);
      *quiesced = true;
      return Status::OK();
    }
    virErrorPtr e = virGetLastError();
    const int code = e ? e->code : 0;
    if (code != VIR_ERR_ARGUMENT_UNSUPPORTED && code != VIR_ERR_AGENT_UNRESPONSIVE) {
      // The agent answered and refused to freeze, or libvirt refused: no
      // snapshot was taken (libvirt thaws what it froze).
      return Status::IOError("VM '" + vm.name + "'", "live snapshot (quiesced): " + LastError());
    }
    // No agent configured, or none answering: crash-consistent.
    virDomainSnapshotPtr s = virDomainSnapshotCreateXML(d.get(), xml.c_str(), flags);
    if (!s) return Status::IOError("VM '" + vm.name + "'", "live snapshot: " + LastError());
    virDomainSnapshotFree(s);
    *quiesced = false;
    return Status::OK();
  }

  Status MirrorDisk(const DomainRef& vm, const std::string& target, const std::string& file) override {
    const std::string xml = "<disk type='file'><driver type='qcow2'/><source file='" + XmlAttr(file) + "'/></disk>";
    // SHALLOW: the top only (its backing is the caller's new base);
    // REUSE_EXT: the caller's file, made O_EXCL in a pool; TRANSIENT_JOB:
    // allowed on a persistent domain (the service redefines it after).
    const unsigned flags = VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB;
    return WithDomain(vm, "block copy", [&](virDomainPtr d) {
      return virDomainBlockCopy(d, target.c_str(), xml.c_str(), nullptr, 0, flags);
    });
  }

  Result<std::string> DomainXml(const DomainRef& vm, bool live) override {
    std::string xml;
    Status st = WithDomain(vm, "read definition", [&](virDomainPtr d) {
      if (live && virDomainIsActive(d) != 1) return 0;
      char* text = virDomainGetXMLDesc(d, live ? 0 : VIR_DOMAIN_XML_INACTIVE);
      if (!text) return -1;
      xml = text;
      free(text);
      return 0;
    });
    if (!st.ok()) return st;
    if (xml.empty()) return Status::NotFound("VM '" + vm.name + "' does not run");
    return xml;
  }

  Status PivotDisk(const DomainRef& vm, const std::string& target) override {
    return WithDomain(vm, "pivot", [&](virDomainPtr d) {
      return virDomainBlockJobAbort(d, target.c_str(), VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT);
    });
  }

  Result<DiskJobProgress> DiskJob(const DomainRef& vm, const std::string& target) override {
    DiskJobProgress p;
    Status st = WithDomain(vm, "block job", [&](virDomainPtr d) {
      virDomainBlockJobInfo info{};
      const int rc = virDomainGetBlockJobInfo(d, target.c_str(), &info, 0);
      if (rc == 1) p = {true, info.cur, info.end};
      return rc < 0 ? -1 : 0;
    });
    if (!st.ok()) return st;
    return p;
  }

  Status AbortDiskJob(const DomainRef& vm, const std::string& target) override {
    // Without ASYNC libvirt returns once qemu has stopped the job.
    return WithDomain(vm, "abort block job", [&](virDomainPtr d) { return virDomainBlockJobAbort(d, target.c_str(), 0); });
  }

  Status Shutdown(const DomainRef& vm, int timeout_seconds) override {
    CLONEKIT_RETURN_IF_ERROR(
        WithDomain(vm, "shutdown", [](virDomainPtr d) { return virDomainIsActive(d) == 1 ? virDomainShutdown(d) : 0; }));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    while (State(vm) == Power::kRunning) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::IOError("VM '" + vm.name + "'", "did not shut down within " + std::to_string(timeout_seconds) +
                                                           " s; power it off and retry the clone");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return Status::OK();
  }

 private:
  // REQUIRES: mu_ held. Reopens a connection that dropped (libvirtd
  // restarted): the next call works again without restarting the service.
  void Connect() {
    if (conn_ && virConnectIsAlive(conn_) == 1) return;
    if (conn_) virConnectClose(conn_);
    conn_ = nullptr;
    const auto now = std::chrono::steady_clock::now();
    if (remote_ && now < retry_after_) return;
    conn_ = virConnectOpen(uri_.c_str());
    if (!conn_) retry_after_ = now + std::chrono::seconds(10);
  }

  // REQUIRES: mu_ held. Why the last call failed.
  std::string Why() const { return conn_ ? LastError() : "libvirt at " + uri_ + " does not answer: " + LastError(); }

  // REQUIRES: mu_ held.
  Domain Lookup(const std::string& uuid) {
    Connect();
    if (!conn_ || uuid.empty()) return nullptr;
    return Domain(virDomainLookupByUUIDString(conn_, uuid.c_str()));
  }

  template <typename Fn>
  Status WithDomain(const DomainRef& vm, const char* what, Fn fn, bool missing_ok = false) {
    std::lock_guard<std::mutex> lock(mu_);
    Domain d = Lookup(vm.uuid);
    if (!d) {
      if (missing_ok && conn_) return Status::OK();
      return Status::IOError("VM '" + vm.name + "'", std::string(what) + ": " + Why());
    }
    if (fn(d.get()) < 0) return Status::IOError("VM '" + vm.name + "'", std::string(what) + ": " + LastError());
    return Status::OK();
  }

  std::mutex mu_;  // one call at a time on the connection
  virConnectPtr conn_;
  std::string uri_;
  const bool remote_;
  std::chrono::steady_clock::time_point retry_after_;
};

}  // namespace

Result<std::unique_ptr<Hypervisor>> OpenHypervisor(const std::string& uri) {
  if (uri.empty()) return std::unique_ptr<Hypervisor>(new NoHypervisor);
  // libvirt prints errors to stderr by default; we report them ourselves.
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (!conn) return Status::IOError(uri, "cannot connect to the hypervisor: " + LastError());
  return std::unique_ptr<Hypervisor>(new Libvirt(conn, uri));
}

std::unique_ptr<Hypervisor> RemoteHypervisor(const std::string& uri) {
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  return std::unique_ptr<Hypervisor>(new Libvirt(nullptr, uri, /*remote=*/true));
}

}  // namespace clonekit::manager
