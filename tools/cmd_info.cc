// clonekit info: what qemu-img info says, from our own parser.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace clonekit::tools {

namespace {

using Json = nlohmann::ordered_json;

Json LayerJson(const Image& image) {
  const ImageInfo& info = image.info();
  Json j;
  if (!info.backing_format.empty()) j["backing-filename-format"] = info.backing_format;
  j["virtual-size"] = info.virtual_size;
  j["filename"] = image.name();
  if (info.format == ImageFormat::kQcow2) j["cluster-size"] = info.cluster_size;
  j["format"] = FormatName(info.format);
  j["actual-size"] = image.file().allocated_bytes();
  if (info.format == ImageFormat::kQcow2) {
    Json data;
    data["compat"] = info.version == 2 ? "0.10" : "1.1";
    data["compression-type"] = info.compression_zstd ? "zstd" : "zlib";
    if (info.version == 3) data["lazy-refcounts"] = info.lazy_refcounts;
    data["refcount-bits"] = info.refcount_bits;
    if (info.version == 3) {
      data["corrupt"] = info.corrupt;
      data["extended-l2"] = info.extended_l2;
    }
    j["format-specific"] = Json{{"type", "qcow2"}, {"data", data}};
  }
  if (!info.backing_file.empty()) {
    j["full-backing-filename"] = Chain::ResolveBackingPath(image.name(), info.backing_file);
    j["backing-filename"] = info.backing_file;
  }
  j["dirty-flag"] = info.dirty;
  return j;
}

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    u++;
  }
  char buf[64];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.3g %s", v, units[u]);
  }
  return buf;
}

void PrintHuman(const Image& image) {
  const ImageInfo& info = image.info();
  std::printf("image: %s\n", image.name().c_str());
  std::printf("file format: %s\n", FormatName(info.format));
  std::printf("virtual size: %s (%llu bytes)\n", HumanSize(info.virtual_size).c_str(),
              static_cast<unsigned long long>(info.virtual_size));
  std::printf("disk size: %s\n", HumanSize(image.file().allocated_bytes()).c_str());
  if (info.format != ImageFormat::kQcow2) return;
  std::printf("cluster_size: %llu\n", static_cast<unsigned long long>(info.cluster_size));
  if (!info.backing_file.empty()) {
    std::printf("backing file: %s (actual path: %s)\n", info.backing_file.c_str(),
                Chain::ResolveBackingPath(image.name(), info.backing_file).c_str());
    std::printf("backing file format: %s\n", info.backing_format.c_str());
  }
  std::printf("Format specific information:\n");
  std::printf("    compat: %s\n", info.version == 2 ? "0.10" : "1.1");
  std::printf("    compression type: %s\n", info.compression_zstd ? "zstd" : "zlib");
  if (info.version == 3) std::printf("    lazy refcounts: %s\n", info.lazy_refcounts ? "true" : "false");
  std::printf("    refcount bits: %u\n", info.refcount_bits);
  if (info.version == 3) {
    std::printf("    corrupt: %s\n", info.corrupt ? "true" : "false");
    std::printf("    extended l2: %s\n", info.extended_l2 ? "true" : "false");
  }
  if (info.internal_snapshots) std::printf("internal snapshots: %u (not read)\n", info.internal_snapshots);
  if (info.dirty) std::printf("dirty: true (refcounts may be stale; reading is unaffected)\n");
}

}  // namespace

Runner AddInfoCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "show an image's format, sizes and backing file");
  auto args = std::make_shared<ChainArgs>();
  auto chain_wanted = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>("human");
  args->Register(cmd);
  cmd->add_flag("--backing-chain", *chain_wanted, "show every layer of the chain");
  cmd->add_option("--output", *output, "human or json")->check(CLI::IsMember({"human", "json"}));
  return [=]() {
    std::unique_ptr<Chain> chain;
    if (*chain_wanted) {
      Result<std::unique_ptr<Chain>> opened = args->Open();
      if (!opened.ok()) return Fail(opened.status());
      chain = std::move(opened).value();
    } else {
      // Only the named image; its backing file is not opened.
      OpenOptions open;
      open.force_share = args->force_share;
      Result<std::unique_ptr<ReadableFile>> file = OpenFileForRead(args->image, open);
      if (!file.ok()) return Fail(file.status());
      ImageFormat format = DetectFormat(**file);
      if (!args->format.empty()) {
        Result<ImageFormat> f = ParseFormat(args->image, args->format);
        if (!f.ok()) return Fail(f.status());
        format = *f;
      }
      Result<std::unique_ptr<Image>> image = OpenImage(std::move(file).value(), format);
      if (!image.ok()) return Fail(image.status());
      if (*output == "json") {
        std::printf("%s\n", LayerJson(**image).dump(4).c_str());
      } else {
        PrintHuman(**image);
      }
      return 0;
    }
    if (*output == "json") {
      Json list = Json::array();
      for (const auto& layer : chain->layers()) list.push_back(LayerJson(*layer));
      std::printf("%s\n", list.dump(4).c_str());
    } else {
      bool first = true;
      for (const auto& layer : chain->layers()) {
        if (!first) std::printf("\n");
        first = false;
        PrintHuman(*layer);
      }
    }
    return 0;
  };
}

}  // namespace clonekit::tools
