#include "clonekit/collapse.h"

#include <sys/stat.h>

#include "copier.h"
#include "copy_driver.h"
#include "nbd_destination.h"
#include "output_file.h"
#include "qcow2_writer.h"
#include "raw_destination.h"

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

Status CheckOptions(const CollapseOptions& o) {
  if (o.format == OutputFormat::kQcow2) {
    if (o.no_create || o.direct || o.target_is_zero) {
      return Status::InvalidArgument("-n, --direct and --target-is-zero apply to raw output only");
    }
  } else if (o.compression != OutputCompression::kNone) {
    return Status::InvalidArgument("compression needs qcow2 output (-O qcow2)");
  }
  if (o.target_is_zero && !o.no_create) {
    return Status::InvalidArgument("--target-is-zero needs -n (or an NBD destination)");
  }
  if (o.sparse_block % 512 != 0) return Status::InvalidArgument("-S must be a multiple of 512");
  if (o.queue_depth == 0 || o.queue_depth > 4096) return Status::InvalidArgument("--queue-depth must be 1..4096");
  if (o.request_bytes < 4096 || o.request_bytes > (32u << 20) || o.request_bytes % 4096) {
    return Status::InvalidArgument("request size must be a multiple of 4 KiB between 4 KiB and 32 MiB");
  }
  if (o.window_bytes < o.request_bytes || o.window_bytes % (64 << 10)) {
    return Status::InvalidArgument("window must be a multiple of 64 KiB, at least one request");
  }
  return Status::OK();
}

bool Cancelled(const CollapseOptions& o) { return o.cancel && o.cancel->load(); }

// io_uring, or the simple copier where the kernel offers none (disabled by
// sysctl or seccomp).
Result<std::unique_ptr<Copier>> NewRawCopier(const Chain& chain, RawDestination& destination,
                                             const CollapseOptions& options) {
  Result<std::unique_ptr<Copier>> uring = NewUringCopier(chain, destination, options);
  if (uring.ok()) return uring;
  return NewSimpleCopier(chain, destination, options);
}

Status CollapseToRaw(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                     CollapseStats* stats) {
  Result<std::unique_ptr<RawDestination>> dest = RawDestination::Open(destination, chain.virtual_size(), options);
  if (!dest.ok()) return dest.status();
  Result<std::unique_ptr<Copier>> copier = NewRawCopier(chain, **dest, options);
  if (!copier.ok()) return copier.status();
  uint64_t copied = 0;
  CLONEKIT_RETURN_IF_ERROR(DriveCopy(chain, **copier, options, &copied));
  if (Cancelled(options)) return Status::Cancelled("interrupted");
  CLONEKIT_RETURN_IF_ERROR((*dest)->Commit());
  if (stats) stats->data_bytes = copied;
  return Status::OK();
}

Status CollapseToQcow2(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                       CollapseStats* stats) {
  Result<std::unique_ptr<OutputFile>> out = OutputFile::Create(destination, options.overwrite, options.file_mode);
  if (!out.ok()) return out.status();
  Result<std::unique_ptr<Qcow2Writer>> writer =
      Qcow2Writer::Create((*out)->fd(), destination, chain.virtual_size(), options.compression, options.page_cache);
  if (!writer.ok()) return writer.status();
  std::unique_ptr<Copier> copier = NewQcow2Copier(chain, **writer, options);
  uint64_t copied = 0;
  CLONEKIT_RETURN_IF_ERROR(DriveCopy(chain, *copier, options, &copied));
  if (Cancelled(options)) return Status::Cancelled("interrupted");
  CLONEKIT_RETURN_IF_ERROR((*out)->Commit());
  if (stats) stats->data_bytes = copied;
  return Status::OK();
}

// An export is the disk itself: written in place, nothing to commit.
Status CollapseToNbd(const Chain& chain, const std::string& uri, const CollapseOptions& options,
                     CollapseStats* stats) {
  Result<std::unique_ptr<Copier>> copier = NewNbdCopier(chain, uri, options);
  if (!copier.ok()) return copier.status();
  uint64_t copied = 0;
  CLONEKIT_RETURN_IF_ERROR(DriveCopy(chain, **copier, options, &copied));
  if (stats) stats->data_bytes = copied;
  return Status::OK();
}

}  // namespace

Status Collapse(const Chain& chain, const std::string& destination, const CollapseOptions& options,
                CollapseStats* stats) {
  if (stats) stats->virtual_size = chain.virtual_size();
  if (IsNbdUri(destination)) {
    // An export is always written in place: -n is implied.
    if (options.format != OutputFormat::kRaw) {
      return Status::InvalidArgument(destination + ": an NBD export takes the raw disk (-O raw)");
    }
    CollapseOptions in_place = options;
    in_place.no_create = true;
    CLONEKIT_RETURN_IF_ERROR(CheckOptions(in_place));
    return CollapseToNbd(chain, destination, in_place, stats);
  }
  CLONEKIT_RETURN_IF_ERROR(CheckOptions(options));
  CLONEKIT_RETURN_IF_ERROR(RefuseSourceAsDestination(chain, destination));
  return options.format == OutputFormat::kRaw ? CollapseToRaw(chain, destination, options, stats)
                                              : CollapseToQcow2(chain, destination, options, stats);
}

}  // namespace clonekit
