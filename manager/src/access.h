// Access: who may drive the service, decided before any route runs.
//
// Two doors. The Unix socket is the default one: the kernel names the peer
// (SO_PEERCRED), and only root or a member of the `clonekit` group gets in;
// pool changes need root. TCP (loopback or not) always needs the bearer
// token, which lives in a 0600 file beside the database, made at the first
// start, never on a command line.
//
// Thread-safety: the functions are pure or touch only the files named; a
// Caller is a value.
#ifndef CLONEKIT_MANAGER_ACCESS_H_
#define CLONEKIT_MANAGER_ACCESS_H_

#include <sys/types.h>

#include <string>

#include "clonekit/status.h"

namespace clonekit::manager {

// Who sent a request, as far as the service knows.
struct Caller {
  enum class Door { kUnixSocket, kTcp };
  Door door = Door::kTcp;
  uid_t uid = static_cast<uid_t>(-1);  // the peer's uid on the Unix socket; -1 on TCP
  bool admin() const { return door == Door::kUnixSocket && uid == 0; }
};

// The group whose members may use the Unix socket besides root.
inline constexpr const char* kClientGroup = "clonekit";

// Whether the peer of our Unix socket connection from process `pid` (the
// pid cpp-httplib hands on as the request's remote port, from SO_PEERCRED)
// is root or in kClientGroup, by the credentials the kernel recorded when
// it connected: SO_PEERCRED and SO_PEERGROUPS of our own connected sockets
// whose peer is that pid (the least privileged of them, should there be
// several). Nothing is read of the process as it is now, so neither an
// exec of a setuid program nor a reused pid changes the answer. Sets *uid.
// The socket file's mode (0660, root:clonekit) is the kernel's gate in
// front of this one.
bool PeerAllowed(pid_t pid, uid_t* uid);

// The token in `path`, made (32 random bytes, hex, mode 0600, O_EXCL) when
// the file does not exist. Refuses a file that is not a regular file owned
// by us with no group or other access, and a symlink.
// REQUIRES: the directory exists.
Result<std::string> LoadOrCreateToken(const std::string& path);

// The token in `path` for a client (same checks on the file's type, none on
// its owner: a client reads what root made for it).
Result<std::string> ReadToken(const std::string& path);

// Constant-time comparison of a presented secret with the token.
bool TokenEquals(const std::string& presented, const std::string& token);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_ACCESS_H_
