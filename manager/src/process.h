// Process: runs a helper program (qemu-img) without a shell.
//
// Thread-safety: callable from any thread; the child's argv is built
// before fork (a threaded process may only call async-signal-safe
// functions between fork and exec).
#ifndef CLONEKIT_MANAGER_PROCESS_H_
#define CLONEKIT_MANAGER_PROCESS_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
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

// Runs argv[0] (from PATH) with `input` on its stdin, which then stays
// open until the child's stdout ends (a remote end that waits for it to
// close learns that we are gone), and hands each piece of its stdout to
// on_output as it comes. *cancel (polled every 100 ms) ends its process
// group with SIGTERM: the result is then Cancelled. No deadline: the child
// must end by itself (ssh does, when its peer is silent). heartbeat_seconds
// > 0: a newline is written to its stdin that often, for a remote end that
// stops when none comes (clonekit collapse --heartbeat).
[[nodiscard]] Status Stream(const std::vector<std::string>& argv, const std::string& input,
                            const std::function<void(std::string_view)>& on_output, const std::atomic<bool>* cancel,
                            int heartbeat_seconds = 0);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_PROCESS_H_
