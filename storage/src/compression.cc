#include "compression.h"

#include <zlib.h>
#include <zstd.h>

#include <memory>

namespace clonekit {

namespace {

// Decoder states are made once per thread and reset per cluster: creating
// a zstd context allocates and clears about 160 KiB, which was 6 % of a
// cold copy of a zstd-compressed chain.
struct ZlibState {
  z_stream strm = {};
  bool ready = false;
  ~ZlibState() {
    if (ready) inflateEnd(&strm);
  }
};

std::string Inflate(const uint8_t* in, size_t in_size, uint8_t* out, size_t out_size) {
  thread_local ZlibState state;
  if (!state.ready) {
    if (inflateInit2(&state.strm, -12) != Z_OK) return "cannot initialise zlib";
    state.ready = true;
  } else if (inflateReset(&state.strm) != Z_OK) {
    return "cannot reset zlib";
  }
  z_stream& strm = state.strm;
  strm.next_in = const_cast<uint8_t*>(in);
  strm.avail_in = static_cast<uInt>(in_size);
  strm.next_out = out;
  strm.avail_out = static_cast<uInt>(out_size);
  int ret = inflate(&strm, Z_FINISH);
  bool full = strm.avail_out == 0;
  // Z_BUF_ERROR is expected: the input is sector-rounded, so it may end
  // before the stream's end marker is seen or run on past it.
  if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && full) return "";
  if (ret == Z_STREAM_END || (ret == Z_BUF_ERROR && !full)) {
    return "deflate stream ends after " + std::to_string(out_size - strm.avail_out) +
           " bytes, not one cluster (" + std::to_string(out_size) + ")";
  }
  return std::string("corrupt deflate stream (") + (strm.msg ? strm.msg : "zlib error") + ")";
}

std::string Unzstd(const uint8_t* in, size_t in_size, uint8_t* out, size_t out_size) {
  struct FreeDCtx {
    void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
  };
  thread_local std::unique_ptr<ZSTD_DCtx, FreeDCtx> state;
  if (!state) {
    state.reset(ZSTD_createDCtx());
    if (!state) return "cannot initialise zstd";
    // Bound the window so a hostile frame cannot make the decoder allocate
    // much. A session reset (below) keeps this parameter.
    ZSTD_DCtx_setParameter(state.get(), ZSTD_d_windowLogMax, 23);
  }
  ZSTD_DCtx* ctx = state.get();
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
  ZSTD_inBuffer ib = {in, in_size, 0};
  ZSTD_outBuffer ob = {out, out_size, 0};
  std::string err;
  while (ob.pos < ob.size) {
    size_t before_in = ib.pos, before_out = ob.pos;
    size_t ret = ZSTD_decompressStream(ctx, &ob, &ib);
    if (ZSTD_isError(ret)) {
      err = std::string("corrupt zstd stream (") + ZSTD_getErrorName(ret) + ")";
      break;
    }
    if (ib.pos == before_in && ob.pos == before_out) {
      err = "zstd stream ends after " + std::to_string(ob.pos) + " bytes, not one cluster (" +
            std::to_string(out_size) + ")";
      break;
    }
  }
  return err;
}

}  // namespace

std::string DecompressCluster(Codec codec, const uint8_t* in, size_t in_size, uint8_t* out,
                              size_t out_size) {
  return codec == Codec::kZstd ? Unzstd(in, in_size, out, out_size)
                               : Inflate(in, in_size, out, out_size);
}

size_t CompressCluster(Codec codec, const uint8_t* in, size_t in_size, uint8_t* out,
                       size_t out_capacity) {
  if (codec == Codec::kZstd) {
    size_t n = ZSTD_compress(out, out_capacity, in, in_size, ZSTD_CLEVEL_DEFAULT);
    return ZSTD_isError(n) ? 0 : n;
  }
  z_stream strm = {};
  if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return 0;
  }
  strm.next_in = const_cast<uint8_t*>(in);
  strm.avail_in = static_cast<uInt>(in_size);
  strm.next_out = out;
  strm.avail_out = static_cast<uInt>(out_capacity);
  int ret = deflate(&strm, Z_FINISH);
  size_t n = out_capacity - strm.avail_out;
  deflateEnd(&strm);
  return ret == Z_STREAM_END ? n : 0;
}

}  // namespace clonekit
