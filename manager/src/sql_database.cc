#include "sql_database.h"

namespace clonekit::manager {

std::string ExpandSchema(std::string text, const std::string& id, const std::string& integer, const std::string& real) {
  for (const auto& [key, word] : {std::pair<const char*, const std::string&>{"{ID}", id}, {"{INT}", integer}, {"{REAL}", real}}) {
    const std::string k = key;
    for (size_t at = text.find(k); at != std::string::npos; at = text.find(k, at + word.size())) {
      text.replace(at, k.size(), word);
    }
  }
  return text;
}

}  // namespace clonekit::manager
