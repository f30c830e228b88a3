#include "remote_host.h"

#include <libxml/uri.h>

#include <memory>
#include <regex>

#include "process.h"

namespace clonekit::manager {

// A host name, an IPv4 address, or an IPv6 one in brackets; never starting
// with '-' (ssh would read an option).
bool ValidHostName(const std::string& h) {
  static const std::regex name("[A-Za-z0-9]([A-Za-z0-9.-]{0,252})");
  static const std::regex v6(R"(\[[0-9A-Fa-f:.]{2,45}\])");
  return std::regex_match(h, name) || std::regex_match(h, v6);
}

bool ValidUserName(const std::string& u) {
  static const std::regex user("[a-z_][a-z0-9_.-]{0,31}");
  return std::regex_match(u, user);
}

std::string SshTarget::ToString() const {
  return (user.empty() ? "" : user + "@") + host + (port ? ":" + std::to_string(port) : "");
}

Result<SshTarget> ParseSshTarget(const std::string& text) {
  const Status bad = Status::InvalidArgument("SSH address '" + text.substr(0, 100) + "'", "is not [USER@]HOST[:PORT]");
  SshTarget t;
  std::string rest = text;
  if (const size_t at = rest.find('@'); at != std::string::npos) {
    t.user = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (!ValidUserName(t.user)) return bad;
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return bad;
    t.port = std::stoi(port);
    if (t.port < 1 || t.port > 65535) return bad;
    rest = rest.substr(0, colon);
  }
  t.host = rest;
  if (!ValidHostName(t.host)) return bad;
  return t;
}

Result<SshTarget> SshTargetOfUri(const std::string& uri) {
  std::unique_ptr<xmlURI, void (*)(xmlURI*)> u(xmlParseURI(uri.c_str()), xmlFreeURI);
  if (!u || !u->scheme || !u->server) return Status::InvalidArgument("host URI '" + uri.substr(0, 200) + "'", "names no host");
  const std::string scheme = u->scheme;
  if (scheme != "qemu+ssh" && scheme != "qemu+libssh" && scheme != "qemu+libssh2") {
    return Status::InvalidArgument("host URI '" + uri.substr(0, 200) + "'",
                                   "is not reached over SSH: give the host's SSH address (host add --ssh USER@HOST)");
  }
  std::string text = std::string(u->user ? std::string(u->user) + "@" : "") + u->server;
  if (u->port > 0) text += ":" + std::to_string(u->port);
  return ParseSshTarget(text);
}

std::string ShellQuote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::vector<std::string> RemoteHost::SshArgv(const std::vector<std::string>& argv) const {
  std::vector<std::string> ssh = {"ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                                  "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3",
                                  "-T", "-x", "-a"};
  if (target_.port) ssh.insert(ssh.end(), {"-p", std::to_string(target_.port)});
  if (!target_.user.empty()) ssh.insert(ssh.end(), {"-l", target_.user});
  std::string command;
  for (const std::string& a : argv) command += (command.empty() ? "" : " ") + ShellQuote(a);
  std::string host = target_.host;
  if (host.front() == '[') host = host.substr(1, host.size() - 2);  // (ssh takes IPv6 bare)
  ssh.insert(ssh.end(), {"--", host, command});
  return ssh;
}

// What the remote program said (ssh passes its stderr on), or ssh's own
// error, as the host's.
Status RemoteHost::Failed(const Status& status) const {
  std::string why = status.message();
  if (why.rfind("ssh: ", 0) == 0) why = why.substr(5);
  return Status::IOError("host " + name_, why);
}

Result<std::string> RemoteHost::Run(const std::vector<std::string>& argv, int timeout_seconds, size_t max_output) const {
  Result<std::string> out = Capture(SshArgv(argv), timeout_seconds, max_output);
  if (!out.ok()) return Failed(out.status());
  return out;
}

Status RemoteHost::Stream(const std::vector<std::string>& argv, const std::string& input,
                          const std::function<void(std::string_view)>& on_output, const std::atomic<bool>* cancel,
                          int heartbeat_seconds) const {
  Status s = manager::Stream(SshArgv(argv), input, on_output, cancel, heartbeat_seconds);
  if (s.ok() || s.IsCancelled()) return s;
  return Failed(s);
}

}  // namespace clonekit::manager
