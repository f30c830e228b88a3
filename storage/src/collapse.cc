#include "clonekit/collapse.h"

#include <sys/stat.h>

#include "clonekit/chain_resolver.h"
#include "extent_copier.h"
#include "image_writer.h"
#include "output_file.h"

namespace clonekit {

namespace {

// Replacing a layer of the chain being read would destroy the source.
Status RefuseSourceAsDestination(const Chain& chain, const std::string& destination) {
  struct stat st;
  if (stat(destination.c_str(), &st) != 0) return Status::OK();
  FileIdentity id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  for (const auto& layer : chain.layers()) {
    if (layer->file().identity() == id) {
      return Status::InvalidArgument(destination + ": is a layer of the source chain; refusing to overwrite it");
    }
  }
  return Status::OK();
}

}  // namespace

Status Collapse(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                CollapseStats* stats) {
  if (options.format == OutputFormat::kRaw && options.compression != OutputCompression::kNone) {
    return Status::InvalidArgument("compression needs qcow2 output (-O qcow2)");
  }
  CLONEKIT_RETURN_IF_ERROR(RefuseSourceAsDestination(chain, destination));

  ExtentMap map;
  ChainResolver resolver(chain);
  CLONEKIT_RETURN_IF_ERROR(resolver.Resolve(0, chain.virtual_size(), &map));
  const uint64_t total = map.data_bytes();

  Result<std::unique_ptr<OutputFile>> out = OutputFile::Create(destination, options.overwrite);
  if (!out.ok()) return out.status();
  const uint64_t size = chain.virtual_size();
  Result<std::unique_ptr<ImageWriter>> writer =
      options.format == OutputFormat::kRaw
          ? NewRawWriter((*out)->fd(), destination, size)
          : NewQcow2Writer((*out)->fd(), destination, size, options.compression);
  if (!writer.ok()) return writer.status();

  CopyControl control;
  control.cancel = options.cancel;
  if (options.progress) {
    options.progress(0, total);
    control.progress = [&](uint64_t done) { options.progress(done, total); };
  }
  CLONEKIT_RETURN_IF_ERROR(NewSimpleCopier()->Copy(chain, map, **writer, control));
  CLONEKIT_RETURN_IF_ERROR((*writer)->Finish());
  if (options.cancel && options.cancel->load()) return Status::Cancelled("interrupted");
  CLONEKIT_RETURN_IF_ERROR((*out)->Commit());
  if (stats) {
    stats->virtual_size = size;
    stats->data_bytes = total;
    stats->extents = map.extents().size();
  }
  return Status::OK();
}

}  // namespace clonekit
