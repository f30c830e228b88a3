// libFuzzer target: the edits clonekit makes to a hostile guest's
// configuration files (guest_text.h), on any bytes. Oracle: no crash or
// sanitizer report, and each edit's promise holds: SafeText's output is
// strict UTF-8 (nlohmann's encoder, strict, accepts it) with no C0 or C1
// control, within its bound; RenameHost changes nothing when it renames
// nothing; after RewriteMacs no whole-token source MAC is left (a second
// pass changes nothing); SetInstanceId's YAML has its instance-id lines,
// at least one, all the new one.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "guest_text.h"

using namespace clonekit::manager;

namespace {

bool PrintableUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; k++) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  const std::string safe = SafeText(text, 64);
  if (!PrintableUtf8(safe) || safe.size() > 64 + 3 + 3) std::abort();
  (void)nlohmann::json(safe).dump();  // throws (and so fails) on invalid UTF-8
  for (size_t i = 0; i + 1 < safe.size(); i++) {
    if (static_cast<unsigned char>(safe[i]) == 0xc2 && static_cast<unsigned char>(safe[i + 1]) < 0xa0) std::abort();  // C1
  }

  std::string hosts = text;
  if (RenameHost(&hosts, "src-host.example.org", "web-2") == 0 && hosts != text) std::abort();

  const std::vector<std::pair<std::string, std::string>> macs = {{"52:54:00:ab:cd:ef", "52:54:00:11:22:33"},
                                                                 {"52:54:00:00:00:01", "52:54:00:44:55:66"}};
  std::string bindings = text;
  RewriteMacs(&bindings, macs);
  if (!RewriteMacs(&bindings, macs).empty()) std::abort();

  std::string meta = text;
  if (SetInstanceId(&meta, "u-1")) {
    std::istringstream in(meta);
    int ids = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("instance-id:", 0) == 0) {
        ids++;
        if (line != "instance-id: u-1") std::abort();
      }
    }
    if (ids < 1) std::abort();
  }
  return 0;
}
