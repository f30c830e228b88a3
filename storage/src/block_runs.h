// The zero-block scanner (internal): where a buffer's all-zero blocks are.
//
// Every destination skips (or zeroes cheaply) the blocks of copied data
// that are all zero, as qemu-img's -S does. Blocks are aligned to the
// disk offset, not the buffer, so the same bytes give the same holes
// whichever request carried them.
#ifndef CLONEKIT_STORAGE_BLOCK_RUNS_H_
#define CLONEKIT_STORAGE_BLOCK_RUNS_H_

#include <cstddef>
#include <cstdint>

namespace clonekit {

// True when the buffer holds only zero bytes.
bool IsZero(const uint8_t* data, size_t length);

// [start, end) of a buffer: whole blocks that are all zero, or all not.
struct BlockRun {
  size_t start = 0;
  size_t end = 0;
  bool zero = false;
};

// The run of `buf` (length `length`, whose first byte is disk offset `at`)
// that begins at *cursor, of blocks of `block` bytes; advances *cursor
// past it. Returns false at the end of the buffer. With block 0 the whole
// rest of the buffer is one non-zero run (no scanning).
bool NextBlockRun(const uint8_t* buf, size_t length, uint64_t at, uint32_t block, size_t* cursor,
                  BlockRun* run);

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_BLOCK_RUNS_H_
