// RemoteDisk: the target end of one disk of a clone made on another host.
// The collapse runs here, where the source chain is, and writes into a new
// image there through an NBD export that lives only for the copy: qemu-nbd
// with TLS and a pre-shared key made for it, bound to the address our SSH
// connection reached, on a port of the configured range. No disk data
// crosses the link in clear, and nobody without the key can connect.
//
// On the host, for output POOL/NAME.EXT, everything is in the job's own
// directory `scratch` (POOL/.clonekit-UUID-TARGET, made by mkdir, 0700):
//   reserved  an empty file; output is a hard link to it until the end, so
//             the name is the job's from the plan on and nothing of a
//             partial image is ever under it;
//   image     the new image the export writes;
//   keys.psk  the export's key; pid, err: qemu-nbd's.
// Finish renames image over output (done: a second name for it), and the
// directory goes once the clone is defined. Remove takes an output only if
// it is still one of those two files: a name someone else put there stays.
//
// The pool's directory must be writable by root (the SSH user) only, or
// sticky: anyone else could rename the job's directory away and plant one
// of their own (an image symlinked elsewhere, a key they know). Every step
// checks that, and that the directory is still the job's (0700, ours, not
// a link), and holds a lock on it (a step whose SSH timed out here may
// still run there).
//
// Every step is one SSH command (RemoteHost) running a fixed sh script with
// quoted arguments; the host's answers are parsed as data.
//
// Thread-safety: functions of their arguments; any thread.
#ifndef CLONEKIT_MANAGER_REMOTE_DISK_H_
#define CLONEKIT_MANAGER_REMOTE_DISK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "clonekit/status.h"
#include "remote_host.h"

namespace clonekit::manager {

struct PortRange {
  int first = 10810, last = 10899;
};

// Makes `scratch` (an error if anything has that name) and reserves
// *output there, or STEM-2.EXT, STEM-3.EXT... when taken: *output is the
// name reserved.
[[nodiscard]] Status ReserveRemoteDisk(const RemoteHost& host, const std::string& scratch, std::string* output);

// Who will write into an export.
enum class ExportWriter {
  kThisService,  // its key in a file here (uri())
  kAnotherHost,  // clonekit there, given address() and key() (no file here)
};

// A running export of a new image, and the key to it (for kThisService, in
// a file of ours, 0600, in a directory of ours, /tmp/clonekit-nbd-PID-XXXXXX,
// removed when this goes).
class RemoteExport {
 public:
  RemoteExport() = default;
  RemoteExport(RemoteExport&& other) noexcept;
  RemoteExport& operator=(RemoteExport&& other) noexcept;
  RemoteExport(const RemoteExport&) = delete;
  RemoteExport& operator=(const RemoteExport&) = delete;
  ~RemoteExport();

  // nbds://clonekit@ADDRESS:PORT/disk?tls-psk-file=... for this service's
  // collapse ("" for kAnotherHost).
  const std::string& uri() const { return uri_; }
  // ADDRESS:PORT.
  const std::string& address() const { return address_; }
  // The key (64 hex digits).
  const std::string& key() const { return key_; }

 private:
  friend Result<RemoteExport> ServeRemoteDisk(const RemoteHost&, const std::string&, const std::string&, uint64_t,
                                              PortRange, ExportWriter);
  void RemoveKey();
  std::string uri_, address_, key_dir_, key_;
};

// REQUIRES: scratch reserved (ReserveRemoteDisk). Creates the image (format
// "raw" or "qcow2", size bytes) and its key there and starts qemu-nbd;
// a port in use is tried again with another.
[[nodiscard]] Result<RemoteExport> ServeRemoteDisk(const RemoteHost& host, const std::string& scratch,
                                                   const std::string& format, uint64_t size, PortRange ports,
                                                   ExportWriter writer);

// Removes the key directories of exports whose service died (kill -9):
// those named by a process that no longer exists. At a start.
void RemoveStaleKeyDirs();

// REQUIRES: the collapse into the export returned OK (it flushed). Waits for
// qemu-nbd to end (its client has gone), syncs the image and renames it
// over the reserved output.
[[nodiscard]] Status FinishRemoteDisk(const RemoteHost& host, const std::string& scratch, const std::string& output);

// One SSH round for all of a job's disks (scratch[i] with outputs[i]):
// stops any export, removes each output that is still the job's own
// (unless keep_outputs: a clone that was defined) and the directories.
[[nodiscard]] Status RemoveRemoteDisks(const RemoteHost& host, const std::vector<std::string>& scratch,
                                       const std::vector<std::string>& outputs, bool keep_outputs);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_REMOTE_DISK_H_
