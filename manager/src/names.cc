#include "names.h"

#include <regex>

namespace clonekit::manager {

std::string CheckName(const std::string& what, const std::string& name) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
  if (name.empty()) return what + " name is required";
  if (name.size() > 63 || !std::regex_match(name, re)) {
    return what + " name '" + name.substr(0, 80) +
           "' is not valid: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit";
  }
  return "";
}

std::string CheckNamespace(const std::string& ns) {
  static const std::regex re("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");
  if (ns.size() > 63 || !std::regex_match(ns, re)) {
    return "namespace '" + ns.substr(0, 80) + "' is not valid: 1-63 lowercase letters, digits or '-', not at either end";
  }
  return "";
}

std::string LibvirtName(const std::string& ns, const std::string& name) {
  return ns == "default" ? name : ns + "+" + name;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace clonekit::manager
