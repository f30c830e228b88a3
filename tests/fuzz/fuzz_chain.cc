// libFuzzer target: a two-image chain. Input: [u32 LE top length][top][base];
// the top's backing name resolves to "base" whatever it says, with the
// format its header records (so raw and qcow2 bases are both reached).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_common.h"

namespace {

class TwoImages : public clonekit::FileOpener {
 public:
  TwoImages(std::vector<uint8_t> top, std::vector<uint8_t> base) : top_(std::move(top)), base_(std::move(base)) {}
  clonekit::Result<std::unique_ptr<clonekit::ReadableFile>> Open(const std::string& path) override {
    if (path == "top.qcow2") return clonekit::NewMemoryFile(path, top_, {1, 1});
    if (++opened_ > 1) return clonekit::Status::IOError(path, "no such file");
    return clonekit::NewMemoryFile(path, base_, {1, 2});
  }

 private:
  std::vector<uint8_t> top_, base_;
  int opened_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t top_len;
  std::memcpy(&top_len, data, 4);
  data += 4;
  size -= 4;
  if (top_len > size) top_len = static_cast<uint32_t>(size);
  TwoImages opener({data, data + top_len}, {data + top_len, data + size});
  clonekit::ChainOptions options;
  options.top_format = clonekit::ImageFormat::kQcow2;
  options.max_depth = 2;
  auto chain = clonekit::OpenChain("top.qcow2", opener, options);
  if (chain.ok()) clonekit::fuzz::ResolveAndRead(**chain);
  return 0;
}
