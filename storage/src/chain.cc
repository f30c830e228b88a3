#include "clonekit/chain.h"

#include <climits>
#include <cstdlib>

#include "qcow2_image.h"
#include "table_arena.h"

namespace clonekit {

namespace {

std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s) out += (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) ? c : '?';
  return out;
}

bool InsideAllowedDirs(const std::string& path, const std::vector<std::string>& dirs) {
  char real[PATH_MAX];
  if (!realpath(path.c_str(), real)) return false;
  std::string r = real;
  for (const std::string& dir : dirs) {
    char rdir[PATH_MAX];
    if (!realpath(dir.c_str(), rdir)) continue;
    std::string d = rdir;
    if (d == "/") return true;
    if (r.size() > d.size() && r.compare(0, d.size(), d) == 0 && r[d.size()] == '/') return true;
  }
  return false;
}

}  // namespace

std::string CheckBackingName(const std::string& backing) {
  if (backing.empty()) return "backing file name is empty";
  // qemu reads "proto:..." as a protocol (nbd:, http:, json:...) when the
  // colon comes before any slash; such a name never denotes a local file.
  size_t colon = backing.find(':');
  size_t slash = backing.find('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
    return "backing file name '" + Printable(backing) + "' is a protocol or json: name, not a file: refused";
  }
  return "";
}

std::string Chain::ResolveBackingPath(const std::string& image_path, const std::string& backing) {
  if (!backing.empty() && backing[0] == '/') return backing;
  size_t slash = image_path.rfind('/');
  if (slash == std::string::npos) return backing;
  return image_path.substr(0, slash + 1) + backing;
}

Result<std::unique_ptr<Chain>> OpenChain(const std::string& path, FileOpener& opener,
                                         const ChainOptions& options) {
  std::unique_ptr<Chain> chain(new Chain);
  std::vector<FileIdentity> seen;

  Result<std::unique_ptr<ReadableFile>> top = opener.Open(path);
  if (!top.ok()) return top.status();
  ImageFormat format = options.top_format ? *options.top_format : DetectFormat(**top);
  std::unique_ptr<ReadableFile> file = std::move(top).value();

  while (true) {
    FileIdentity id = file->identity();
    if (id.device != 0 || id.inode != 0) {
      for (size_t i = 0; i < seen.size(); i++) {
        if (seen[i] == id) {
          const Image& naming = *chain->layers_.back();
          return Status::Corruption(naming.name(), "backing file '" + Printable(naming.info().backing_file) +
                                                       "' is " + chain->layers_[i]->name() +
                                                       " again: the backing chain loops");
        }
      }
    }
    seen.push_back(id);
    Result<std::unique_ptr<Image>> image = OpenImage(std::move(file), format);
    if (!image.ok()) return image.status();
    chain->layers_.push_back(std::move(image).value());
    const Image& layer = *chain->layers_.back();
    const ImageInfo& info = layer.info();
    const std::string& name = layer.name();
    if (info.backing_file.empty()) break;

    std::string refused = CheckBackingName(info.backing_file);
    if (!refused.empty()) return Status::Corruption(name, refused);
    if (info.backing_format.empty()) {
      return Status::Corruption(name, "backing file '" + Printable(info.backing_file) +
                                          "' has no recorded format; probing is unsafe "
                                          "(set it with: qemu-img rebase -u -b NAME -F FORMAT)");
    }
    Result<ImageFormat> backing_format = ParseFormat(name, info.backing_format);
    if (!backing_format.ok()) return backing_format.status();
    if (chain->layers_.size() >= options.max_depth) {
      return Status::InvalidArgument(path + ": backing chain is deeper than " +
                                     std::to_string(options.max_depth) + " layers (raise --max-depth)");
    }
    std::string backing_path = Chain::ResolveBackingPath(name, info.backing_file);
    if (!options.allowed_backing_dirs.empty() &&
        !InsideAllowedDirs(backing_path, options.allowed_backing_dirs)) {
      return Status::Corruption(name, "backing file '" + Printable(info.backing_file) +
                                          "' is outside the allowed directories");
    }
    Result<std::unique_ptr<ReadableFile>> next = opener.Open(backing_path);
    if (!next.ok()) {
      if (next.status().IsLocked()) return next.status();
      return Status::Corruption(name, "backing file '" + Printable(info.backing_file) +
                                          "' cannot be opened (" + next.status().message() + ")");
    }
    file = std::move(next).value();
    format = *backing_format;
  }
  const uint64_t per_layer = options.metadata_cache_bytes / chain->layers_.size();
  // One arena for every layer's L2 tables (see table_arena.h).
  auto arena = std::make_shared<TableArena>();
  for (auto& layer : chain->layers_) {
    layer->SetMetadataCacheBytes(per_layer);
    if (layer->info().format == ImageFormat::kQcow2) static_cast<Qcow2Image&>(*layer).UseTableArena(arena);
  }
  return chain;
}

}  // namespace clonekit
