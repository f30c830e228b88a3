#include "hypervisor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace clonekit::manager {

namespace {

std::string LastError() {
  virErrorPtr e = virGetLastError();
  return e && e->message ? e->message : "unknown libvirt error";
}

class NoHypervisor final : public Hypervisor {
 public:
  bool available() const override { return false; }
  std::string uri() const override { return ""; }
  std::string Detail(const std::string&) override { return "shutoff"; }
  Status Define(const std::string&) override { return Status::OK(); }
  Status Undefine(const std::string&) override { return Status::OK(); }
  Status Start(const std::string& name) override { return Refused(name); }
  Status Shutdown(const std::string&, int) override { return Status::OK(); }
  Status Destroy(const std::string&) override { return Status::OK(); }

 private:
  static Status Refused(const std::string& name) {
    return Status::InvalidArgument("VM '" + name + "'", "cannot run: no hypervisor is configured (serve --hypervisor URI)");
  }
};

class Libvirt final : public Hypervisor {
 public:
  Libvirt(virConnectPtr conn, std::string uri) : conn_(conn), uri_(std::move(uri)) {}
  ~Libvirt() override { virConnectClose(conn_); }

  bool available() const override { return true; }
  std::string uri() const override { return uri_; }

  std::string Detail(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    virDomainPtr d = virDomainLookupByName(conn_, name.c_str());
    if (!d) return "undefined";
    int state = VIR_DOMAIN_NOSTATE, reason = 0;
    const int rc = virDomainGetState(d, &state, &reason, 0);
    virDomainFree(d);
    if (rc < 0) return "running";
    switch (state) {
      case VIR_DOMAIN_PAUSED: return "paused";
      case VIR_DOMAIN_SHUTDOWN: return "stopping";
      case VIR_DOMAIN_CRASHED: return "crashed";
      case VIR_DOMAIN_PMSUSPENDED: return "suspended";
      case VIR_DOMAIN_SHUTOFF: return "shutoff";
      default: return "running";
    }
  }

  Status Define(const std::string& xml) override {
    std::lock_guard<std::mutex> lock(mu_);
    virDomainPtr d = virDomainDefineXML(conn_, xml.c_str());
    if (!d) return Status::IOError(uri_, "define: " + LastError());
    virDomainFree(d);
    return Status::OK();
  }

  Status Undefine(const std::string& name) override {
    return WithDomain(name, "undefine", [](virDomainPtr d) {
      // Drivers without NVRAM or managed save (the test driver) refuse the flags.
      int rc = virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
      return rc == 0 ? 0 : virDomainUndefine(d);
    }, /*missing_ok=*/true);
  }

  Status Start(const std::string& name) override {
    return WithDomain(name, "start", [](virDomainPtr d) { return virDomainIsActive(d) == 1 ? 0 : virDomainCreate(d); });
  }

  Status Destroy(const std::string& name) override {
    return WithDomain(name, "destroy", [](virDomainPtr d) { return virDomainIsActive(d) == 1 ? virDomainDestroy(d) : 0; });
  }

  Status Shutdown(const std::string& name, int timeout_seconds) override {
    CLONEKIT_RETURN_IF_ERROR(
        WithDomain(name, "shutdown", [](virDomainPtr d) { return virDomainIsActive(d) == 1 ? virDomainShutdown(d) : 0; }));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    while (State(name) == "running") {
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::IOError("VM '" + name + "'", "did not shut down within " + std::to_string(timeout_seconds) +
                                                        " s; power it off and retry the clone");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return Status::OK();
  }

 private:
  template <typename Fn>
  Status WithDomain(const std::string& name, const char* what, Fn fn, bool missing_ok = false) {
    std::lock_guard<std::mutex> lock(mu_);
    virDomainPtr d = virDomainLookupByName(conn_, name.c_str());
    if (!d) {
      if (missing_ok) return Status::OK();
      return Status::IOError("VM '" + name + "'", std::string(what) + ": " + LastError());
    }
    int rc = fn(d);
    virDomainFree(d);
    if (rc < 0) return Status::IOError("VM '" + name + "'", std::string(what) + ": " + LastError());
    return Status::OK();
  }

  std::mutex mu_;  // one call at a time on the connection
  virConnectPtr conn_;
  std::string uri_;
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

}  // namespace clonekit::manager
