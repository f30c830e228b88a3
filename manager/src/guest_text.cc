#include "guest_text.h"

#include <algorithm>
#include <cstdint>
#include <cctype>
#include <sstream>

namespace clonekit::manager {

namespace {

bool Space(char c) { return std::isspace(static_cast<unsigned char>(c)); }

}  // namespace

std::string AsciiLower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string SafeText(const std::string& in, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < in.size() && out.size() < max_bytes) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = len > 0 && i + len <= in.size();
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; valid && k < len; k++) {
      const unsigned char cc = static_cast<unsigned char>(in[i + k]);
      valid = (cc & 0xc0) == 0x80;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Strict: no overlong form, surrogate or code point past U+10FFFF; and
    // nothing a terminal acts on or that reorders text: C0 and C1
    // controls, DEL, line and paragraph separators, bidi controls.
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    valid = valid && cp >= kMin[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    const bool control = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c || cp == 0x200e || cp == 0x200f ||
                         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
    if (!valid || control) {
      out += '?';
      i += valid ? len : 1;
    } else {
      out.append(in, i, len);
      i += len;
    }
  }
  return i < in.size() ? out + "..." : out;
}

int RenameHost(std::string* hosts, const std::string& old_name, const std::string& new_name) {
  const std::string old_short = old_name.substr(0, old_name.find('.'));
  std::istringstream in(*hosts);
  std::string line, out;
  int changed = 0;
  while (std::getline(in, line)) {
    const size_t comment = line.find('#');
    const std::string body = line.substr(0, comment);
    std::string rebuilt;
    bool first = true, hit = false;
    for (size_t i = 0; i < body.size();) {
      size_t j = i;
      while (j < body.size() && !Space(body[j])) j++;
      std::string word = body.substr(i, j - i);
      // After the address: "old", "old.example.org" (its first label is
      // the host's name).
      if (!first && !word.empty() && (word == old_name || word == old_short || word.rfind(old_short + ".", 0) == 0)) {
        word = word == old_name ? new_name : new_name + word.substr(old_short.size());
        hit = true;
      }
      if (!word.empty()) first = false;
      size_t k = j;
      while (k < body.size() && Space(body[k])) k++;
      rebuilt += word + body.substr(j, k - j);
      i = k;
    }
    if (hit) {
      changed++;
      line = rebuilt + (comment == std::string::npos ? "" : line.substr(comment));
    }
    out += line + "\n";
  }
  if (changed > 0) *hosts = out;
  return changed;
}

std::vector<std::string> RewriteMacs(std::string* text, const std::vector<std::pair<std::string, std::string>>& macs) {
  std::vector<std::string> done;
  std::string lower = AsciiLower(*text);
  const auto boundary = [&](size_t at) {
    return !std::isxdigit(static_cast<unsigned char>(lower[at])) && lower[at] != ':';
  };
  for (const auto& [from, to] : macs) {
    if (from == to || from.empty()) continue;
    for (size_t pos = 0; (pos = lower.find(from, pos)) != std::string::npos;) {
      const size_t end = pos + from.size();
      if ((pos == 0 || boundary(pos - 1)) && (end >= lower.size() || boundary(end))) {
        const std::string found = text->substr(pos, from.size());
        std::string repl = to;
        if (std::any_of(found.begin(), found.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); })) {
          for (char& c : repl) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        text->replace(pos, from.size(), repl);
        lower.replace(pos, from.size(), AsciiLower(repl));
        done.push_back(from + " -> " + repl);
      }
      pos = end;
    }
  }
  return done;
}

bool SetInstanceId(std::string* meta_data, const std::string& id) {
  const size_t start = meta_data->find_first_not_of(" \t\r\n");
  if (start != std::string::npos && (*meta_data)[start] == '{') return false;
  std::istringstream in(*meta_data);
  std::string line, out;
  bool found = false;
  while (std::getline(in, line)) {
    if (line.rfind("instance-id:", 0) == 0) {
      found = true;
      line = "instance-id: " + id;
    } else if (line.find("instance-id") != std::string::npos) {
      return false;  // another spelling ("instance-id : x", quoted, indented): not guessed at
    }
    out += line + "\n";
  }
  *meta_data = found ? out : "instance-id: " + id + "\n" + out;
  return true;
}

}  // namespace clonekit::manager
