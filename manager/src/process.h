// Process: runs a helper program (qemu-img) without a shell.
//
// Thread-safety: callable from any thread; the child's argv is built
// before fork (a threaded process may only call async-signal-safe
// functions between fork and exec).
#ifndef CLONEKIT_MANAGER_PROCESS_H_
#define CLONEKIT_MANAGER_PROCESS_H_

#include <string>
#include <vector>

#include "clonekit/status.h"

namespace clonekit::manager {

// Runs argv[0] (from PATH) and waits. With pass_fd >= 0 the child gets that
// descriptor as fd 3 (so a file opened safely can be named /dev/fd/3). The
// error names the program and its first line of stderr.
[[nodiscard]] Status Run(const std::vector<std::string>& argv, int pass_fd = -1);

// Runs argv[0] (from PATH) and returns its stdout (at most max_output
// bytes). It is killed after timeout_seconds ("no answer within N s").
[[nodiscard]] Result<std::string> Capture(const std::vector<std::string>& argv, int timeout_seconds,
                                          size_t max_output = 1 << 20);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_PROCESS_H_
