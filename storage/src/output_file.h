// OutputFile (internal): a destination that only appears when complete.
//
// Data goes to a temporary file in the destination's directory; Commit
// makes it durable (fdatasync), renames it into place (refusing to replace
// an existing file unless asked) and fsyncs the directory. Anything not
// committed is unlinked, so a failed or cancelled copy leaves nothing behind.
#ifndef CLONEKIT_STORAGE_OUTPUT_FILE_H_
#define CLONEKIT_STORAGE_OUTPUT_FILE_H_

#include <memory>
#include <string>

#include "clonekit/status.h"

namespace clonekit {

class OutputFile {
 public:
  static Result<std::unique_ptr<OutputFile>> Create(const std::string& destination, bool overwrite, unsigned mode = 0644);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  int fd() const { return fd_; }
  const std::string& destination() const { return destination_; }
  const std::string& temp_path() const { return temp_; }
  Status Commit();

 private:
  OutputFile(std::string destination, std::string temp, int fd, bool overwrite, int slot);
  bool NameIsOurs() const;
  std::string destination_;
  std::string temp_;
  int fd_;
  bool overwrite_;
  bool committed_ = false;
  int slot_;  // in the signal-safe registry of partial files
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_OUTPUT_FILE_H_
