// RemoteHost: runs a command on another host through OpenSSH, the one way
// the manager acts on a host's files (its pools). As Proxmox does between
// its nodes: root's own SSH keys, nothing else to install or open.
//
// Trust: the manager's root key is root on every added host, so the hosts
// trust the manager; the manager trusts a host's answers only as data
// (parsed strictly, never run). A host's key must already be in root's
// known_hosts (StrictHostKeyChecking=yes: no key is trusted on first use);
// BatchMode (no prompt); a host silent for 6 s drops the channel
// (ServerAlive) and every command has a deadline. The command is a fixed
// program and its arguments, each quoted for the remote shell (ssh sends
// one string), never text a caller wrote as shell.
//
// Thread-safety: const methods, callable from any thread; each call is its
// own ssh process.
#ifndef CLONEKIT_MANAGER_REMOTE_HOST_H_
#define CLONEKIT_MANAGER_REMOTE_HOST_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::manager {

// USER@HOST[:PORT] (USER and PORT optional), checked.
struct SshTarget {
  std::string user, host;
  int port = 0;  // 0: ssh's default
  std::string ToString() const;
};

// A host name, IPv4 address or [IPv6] address, never starting with '-';
// a user name as useradd takes it.
bool ValidHostName(const std::string& host);
bool ValidUserName(const std::string& user);

// A target as an admin writes it ("root@h2", "h2:2222"); an error names it.
[[nodiscard]] Result<SshTarget> ParseSshTarget(const std::string& text);
// The SSH target a qemu+ssh (libssh, libssh2) URI names; an error for other
// transports (qemu+tls: give one with host add --ssh).
[[nodiscard]] Result<SshTarget> SshTargetOfUri(const std::string& uri);

// One argument as the remote POSIX shell reads it back unchanged.
std::string ShellQuote(const std::string& arg);

class RemoteHost {
 public:
  RemoteHost(std::string name, SshTarget target) : name_(std::move(name)), target_(std::move(target)) {}

  // argv run on the host; its stdout. Errors say "host NAME: ...".
  [[nodiscard]] Result<std::string> Run(const std::vector<std::string>& argv, int timeout_seconds = 20,
                                        size_t max_output = 1 << 20) const;

  // argv run on the host with `input` on its stdin, its stdout handed to
  // on_output as it comes (process.h's Stream). The channel's stdin stays
  // open while it runs: a remote script can tell that we are gone (its
  // stdin ends) when we are cancelled or die.
  [[nodiscard]] Status Stream(const std::vector<std::string>& argv, const std::string& input,
                              const std::function<void(std::string_view)>& on_output, const std::atomic<bool>* cancel,
                              int heartbeat_seconds = 0) const;

  const std::string& name() const { return name_; }

 private:
  std::vector<std::string> SshArgv(const std::vector<std::string>& argv) const;
  Status Failed(const Status& status) const;
  std::string name_;
  SshTarget target_;
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_REMOTE_HOST_H_
