#include "clonekit/status.h"

#include <cstdio>
#include <cstring>

namespace clonekit {

namespace {
// Messages must stay on one line whatever a hostile file name contains.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}
}  // namespace

Status::Status(Code code, const std::string& file, const std::string& what)
    : code_(code), message_(OneLine(file.empty() ? what : file + ": " + what)) {}

Status Status::FromErrno(const std::string& file, const std::string& what, int err) {
  Code code = Code::kIOError;
  if (err == EEXIST) code = Code::kExists;
  return Status(code, file, what + ": " + std::strerror(err));
}

std::string Hex(unsigned long long value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", value);
  return buf;
}

}  // namespace clonekit
