#include "host_probe.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace clonekit::manager {

namespace {

struct Probe {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  HostFacts facts;
};

// (Never destroyed: a probe thread may still run when the process exits.)
std::mutex& in_flight_mu = *new std::mutex;
std::map<std::string, std::shared_ptr<Probe>>& in_flight = *new std::map<std::string, std::shared_ptr<Probe>>;  // by URI

std::string Version(unsigned long v) {
  return std::to_string(v / 1000000) + "." + std::to_string(v / 1000 % 1000) + "." + std::to_string(v % 1000);
}

std::string OneLine(const char* s) {
  std::string out = s ? s : "unknown error";
  return out.substr(0, out.find('\n')).substr(0, 300);
}

void Ask(const std::string& uri, Probe* p) {
  HostFacts f;
  virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});  // (errors are reported here, not printed)
  virConnectPtr c = virConnectOpenReadOnly(uri.c_str());
  if (!c) {
    f.error = OneLine(virGetLastErrorMessage());
  } else {
    unsigned long lib = 0;
    if (virConnectGetLibVersion(c, &lib) == 0) f.libvirt_version = Version(lib);
    if (char* h = virConnectGetHostname(c)) {
      f.hostname = h;
      std::free(h);
    }
    f.reachable = true;
    virConnectClose(c);
  }
  std::lock_guard<std::mutex> lock(p->mu);
  p->facts = f;
  p->done = true;
  p->cv.notify_all();
}

}  // namespace

HostFacts ProbeHost(const std::string& uri, std::chrono::milliseconds timeout) {
  std::shared_ptr<Probe> p;
  {
    // A second caller waits for the attempt under way (within its own deadline).
    std::lock_guard<std::mutex> lock(in_flight_mu);
    auto it = in_flight.find(uri);
    if (it != in_flight.end()) {
      p = it->second;
    } else {
      p = std::make_shared<Probe>();
      in_flight[uri] = p;
      std::thread([uri, p] {
        Ask(uri, p.get());
        std::lock_guard<std::mutex> lock(in_flight_mu);
        in_flight.erase(uri);
      }).detach();
    }
  }
  std::unique_lock<std::mutex> lock(p->mu);
  if (!p->cv.wait_for(lock, timeout, [&] { return p->done; })) {
    HostFacts f;
    f.error = "no answer within " + std::to_string(timeout.count() / 1000) + " s";
    return f;
  }
  return p->facts;
}

}  // namespace clonekit::manager
