// HostProbe: what a host's libvirt says of itself right now (reachable,
// its libvirt version, its host name), through a read-only connection
// opened for the question and closed after.
//
// A connection that does not answer within the timeout (an SSH connect to
// a host that dropped off the network) is left to finish on its own
// thread: the caller gets "no answer within N s" at the deadline, never a
// hang. At most one probe per URI is in flight; asking again meanwhile
// waits for that one's answer (within the new caller's own deadline). An
// attempt libvirt cannot give up on (a TCP connect, an SSH handshake) ends
// when the kernel or ssh gives up; it is never doubled meanwhile, but for
// a caller that asks kAfresh: an attempt under way may have begun before
// the host came back, and its "no answer" would be stale.
//
// Thread-safety: ProbeHost may be called from any thread.
#ifndef CLONEKIT_MANAGER_HOST_PROBE_H_
#define CLONEKIT_MANAGER_HOST_PROBE_H_

#include <chrono>
#include <string>

namespace clonekit::manager {

struct HostFacts {
  bool reachable = false;
  std::string libvirt_version;  // "9.0.0": the host's libvirt (its daemon's, when remote)
  std::string hostname;
  std::string error;  // why not reachable, one line
};

enum class Asking {
  kJoin,    // the attempt under way for this URI, if any
  kAfresh,  // an attempt that begins now
};

HostFacts ProbeHost(const std::string& uri, std::chrono::milliseconds timeout, Asking asking = Asking::kJoin);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HOST_PROBE_H_
