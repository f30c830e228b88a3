// Hosts: the libvirt connections a manager knows besides its own
// (`serve --hypervisor`, the implicit host "local"). What a host's URI may
// say is checked here, before it is stored or opened: the service runs as
// root, and some libvirt URIs choose a program to run (qemu+ext's and
// ssh's command=, netcat=), a socket or key file to use, or a transport
// that is neither encrypted nor authenticated (qemu+tcp).
//
// Allowed: qemu+ssh://[USER@]HOST[:PORT]/system, its libssh and libssh2
// variants, qemu+tls://HOST[:PORT]/system, and test:///default (libvirt's
// test driver, for tests). No query, no fragment, no password.
//
// Thread-safety: pure functions.
#ifndef CLONEKIT_MANAGER_HOST_URI_H_
#define CLONEKIT_MANAGER_HOST_URI_H_

#include <string>

#include "clonekit/status.h"

namespace clonekit::manager {

// The implicit host: the service's own --hypervisor.
inline constexpr const char* kLocalHost = "local";

// OK, or why the URI is refused (one line naming it).
[[nodiscard]] Status CheckHostUri(const std::string& uri);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_HOST_URI_H_
