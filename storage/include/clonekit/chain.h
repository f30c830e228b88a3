// A backing chain: the layer the user named (the snapshot point) and every
// layer below it, newest first.
#ifndef CLONEKIT_CHAIN_H_
#define CLONEKIT_CHAIN_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clonekit/file.h"
#include "clonekit/image.h"

namespace clonekit {

struct ChainOptions {
  // Longest chain accepted, counting the top layer.
  size_t max_depth = 1024;
  // Format of the top image; detected from its magic when unset. Backing
  // formats always come from the header, never from content.
  std::optional<ImageFormat> top_format;
  // When non-empty, backing files must resolve (realpath) inside one of
  // these directories. The manager passes its storage pools.
  std::vector<std::string> allowed_backing_dirs;
  // Metadata (qcow2 L2 tables) kept in memory for the whole chain, split
  // evenly over its layers (at least one table each). A front-to-back
  // collapse needs little; servers answering random reads want more.
  uint64_t metadata_cache_bytes = 1 << 20;
};

class Chain {
 public:
  // layers[0] is the top (depth 0); layers.back() is the base.
  const std::vector<std::unique_ptr<Image>>& layers() const { return layers_; }
  const Image& layer(size_t depth) const { return *layers_[depth]; }
  size_t depth() const { return layers_.size(); }
  uint64_t virtual_size() const { return layers_.front()->virtual_size(); }

  // The path a layer's backing name resolves to (for info's
  // full-backing-filename): relative names against the naming image's directory.
  static std::string ResolveBackingPath(const std::string& image_path, const std::string& backing);

 private:
  friend Result<std::unique_ptr<Chain>> OpenChain(const std::string&, FileOpener&, const ChainOptions&);
  std::vector<std::unique_ptr<Image>> layers_;
};

// Opens `path` and its whole backing chain, validating every layer.
Result<std::unique_ptr<Chain>> OpenChain(const std::string& path, FileOpener& opener,
                                         const ChainOptions& options);

// Why a backing name is refused before any file is opened ("" if acceptable):
// empty, a protocol or json: prefix (qemu would not treat it as a file).
std::string CheckBackingName(const std::string& backing);

}  // namespace clonekit

#endif  // CLONEKIT_CHAIN_H_
