// libFuzzer target: one image from bytes (header, L1/L2 tables, compressed
// clusters). Backing files are not followed here; fuzz_chain covers them.
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"

namespace {

class OneImage : public clonekit::FileOpener {
 public:
  OneImage(const uint8_t* data, size_t size) : bytes_(data, data + size) {}
  clonekit::Result<std::unique_ptr<clonekit::ReadableFile>> Open(const std::string& path) override {
    if (path != "img.qcow2") return clonekit::Status::IOError(path, "no such file");
    return clonekit::NewMemoryFile(path, bytes_, {1, 1});
  }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  OneImage opener(data, size);
  clonekit::ChainOptions options;
  options.top_format = clonekit::ImageFormat::kQcow2;
  auto chain = clonekit::OpenChain("img.qcow2", opener, options);
  if (chain.ok()) clonekit::fuzz::ResolveAndRead(**chain);
  return 0;
}
