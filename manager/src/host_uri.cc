#include "host_uri.h"

#include <libxml/uri.h>

#include <memory>

#include "remote_host.h"

namespace clonekit::manager {

namespace {

struct UriDeleter {
  void operator()(xmlURI* u) const { xmlFreeURI(u); }
};

std::string Str(const char* s) { return s ? s : ""; }

}  // namespace

// libxml2's URI parser is the one libvirt itself uses (virURIParse).
Status CheckHostUri(const std::string& uri) {
  const std::string subject = "host URI '" + uri.substr(0, 200) + "'";
  if (uri.empty()) return Status::InvalidArgument("host URI is required");
  if (uri.size() > 1024) return Status::InvalidArgument("host URI", "longer than 1024 bytes");
  for (unsigned char c : uri) {
    if (c <= 0x20 || c >= 0x7f) return Status::InvalidArgument(subject, "has spaces, control or non-ASCII characters");
    // (Percent-escapes would decode into a host or user name that ssh's
    // configuration expands, %h or %r in a ProxyCommand.)
    if (c == '%') return Status::InvalidArgument(subject, "has a percent-escape");
  }
  std::unique_ptr<xmlURI, UriDeleter> u(xmlParseURI(uri.c_str()));
  if (!u) return Status::InvalidArgument(subject, "is not a URI");
  const std::string scheme = Str(u->scheme), server = Str(u->server), path = Str(u->path), user = Str(u->user);
  if (u->query_raw || u->query || u->fragment) {
    return Status::InvalidArgument(subject, "has a query or fragment: libvirt's URI parameters (command=, socket=, "
                                            "netcat=, keyfile=, ...) choose programs and files the service would use "
                                            "as root, and are refused");
  }
  if (user.find(':') != std::string::npos) return Status::InvalidArgument(subject, "holds a password: use SSH keys or TLS certificates");
  if (scheme == "test") {
    // (Another path is a file the test driver would read as root.)
    if (uri != "test:///default") return Status::InvalidArgument(subject, "the test driver's one host is test:///default");
    return Status::OK();
  }
  if (scheme == "qemu+tcp") {
    return Status::InvalidArgument(subject, "qemu+tcp is neither encrypted nor authenticated: use qemu+ssh or qemu+tls");
  }
  if (scheme == "qemu" || scheme == "qemu+unix") {
    return Status::InvalidArgument(subject, "is this machine's own libvirt: that is the host 'local' (serve --hypervisor)");
  }
  if (scheme != "qemu+ssh" && scheme != "qemu+libssh" && scheme != "qemu+libssh2" && scheme != "qemu+tls") {
    return Status::InvalidArgument(subject, "has transport '" + scheme.substr(0, 40) +
                                                "': a host is qemu+ssh://[USER@]HOST/system or qemu+tls://HOST/system");
  }
  if (server.empty()) return Status::InvalidArgument(subject, "names no host");
  if (!ValidHostName(server)) return Status::InvalidArgument(subject, "names no valid host (a name, an IPv4 or a [IPv6] address)");
  if (!user.empty() && !ValidUserName(user)) return Status::InvalidArgument(subject, "names no valid user");
  if (path != "/system") return Status::InvalidArgument(subject, "must end in /system (the host's system libvirtd)");
  return Status::OK();
}

}  // namespace clonekit::manager
