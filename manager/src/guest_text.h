// GuestText: the edits clonekit makes to a guest's configuration files,
// as pure functions on their text (GuestIdentity reads and writes the
// files inside libguestfs's appliance). The text is the guest's: any
// bytes, any size up to the 1 MiB GuestIdentity reads.
//
// Thread-safety: pure functions.
#ifndef CLONEKIT_MANAGER_GUEST_TEXT_H_
#define CLONEKIT_MANAGER_GUEST_TEXT_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace clonekit::manager {

// `s` with ASCII letters in lower case (MACs, host names).
std::string AsciiLower(std::string s);

// Guest text fit for a report, an error, a log line and a terminal:
// printable UTF-8 only (control characters and invalid bytes become '?'),
// at most `max_bytes` (then "...").
std::string SafeText(const std::string& in, size_t max_bytes = 256);

// In /etc/hosts text, each word after a line's address that names the old
// host (`old` itself, its first label, or `first-label.domain`) is renamed
// to `new_name` (keeping the domain). Comments stay. Returns the number of
// lines changed. REQUIRES: `old_name` is not localhost.
int RenameHost(std::string* hosts, const std::string& old_name, const std::string& new_name);

// Rewrites each `from` MAC (lowercase) in `text`, matched case-insensitively
// as a whole token, to its `to`, in the case the text used. Returns one
// "from -> to" per rewrite.
std::vector<std::string> RewriteMacs(std::string* text, const std::vector<std::pair<std::string, std::string>>& macs);

// Sets `instance-id: id` in NoCloud YAML meta-data, on each line that
// starts "instance-id:" (added first if there is none). Meta-data in
// another form (JSON, or "instance-id" spelled otherwise) is left as it is:
// returns false.
bool SetInstanceId(std::string* meta_data, const std::string& id);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_GUEST_TEXT_H_
