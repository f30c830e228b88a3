// Cluster (de)compression for qcow2 (internal).
//
// qemu writes deflate clusters as raw deflate (no zlib header, window -12) and
// zstd clusters as one frame with no length prefix; the stored size is only
// known to 512-byte precision, so decoders stop once a whole cluster came out.
#ifndef CLONEKIT_STORAGE_COMPRESSION_H_
#define CLONEKIT_STORAGE_COMPRESSION_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace clonekit {

enum class Codec { kDeflate, kZstd };

// Inflates `in` into exactly out_size bytes. Returns "" or what went wrong.
std::string DecompressCluster(Codec codec, const uint8_t* in, size_t in_size, uint8_t* out,
                              size_t out_size);

// Compresses `in`; returns the compressed size, or 0 when the result would
// not fit in out_capacity (store the cluster uncompressed then).
size_t CompressCluster(Codec codec, const uint8_t* in, size_t in_size, uint8_t* out,
                       size_t out_capacity);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_COMPRESSION_H_
