#include "host_probe.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
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

HostFacts ProbeHost(const std::string& uri, std::chrono::milliseconds timeout, Asking asking) {
  std::shared_ptr<Probe> p;
  {
    // A second caller waits for the attempt under way (within its own
    // deadline), unless it asks afresh: then its attempt is its own.
    std::lock_guard<std::mutex> lock(in_flight_mu);
    auto it = in_flight.find(uri);
    if (it != in_flight.end() && asking == Asking::kJoin) {
      p = it->second;
    } else {
      p = std::make_shared<Probe>();
      const bool listed = it == in_flight.end();
      if (listed) in_flight[uri] = p;
      try {
        std::thread([uri, p, listed] {
          Ask(uri, p.get());
          if (!listed) return;
          std::lock_guard<std::mutex> lock(in_flight_mu);
          in_flight.erase(uri);
        }).detach();
      } catch (const std::system_error& e) {  // (out of threads: EAGAIN)
        if (listed) in_flight.erase(uri);
        HostFacts f;
        f.error = std::string("cannot start a probe: ") + e.what();
        return f;
      }
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
