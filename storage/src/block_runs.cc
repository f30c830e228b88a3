#include "block_runs.h"

#include <algorithm>
#include <cstring>

namespace clonekit {

bool IsZero(const uint8_t* data, size_t length) {
  // Compare the first 16 bytes, then the buffer against itself shifted.
  size_t head = std::min<size_t>(length, 16);
  for (size_t i = 0; i < head; i++) {
    if (data[i]) return false;
  }
  return length <= 16 || std::memcmp(data, data + 16, length - 16) == 0;
}

bool NextBlockRun(const uint8_t* buf, size_t length, uint64_t at, uint32_t block, size_t* cursor,
                  BlockRun* run) {
  const size_t pos = *cursor;
  if (pos >= length) return false;
  if (block == 0) {
    *run = {pos, length, false};
    *cursor = length;
    return true;
  }
  auto block_end = [&](size_t p) { return std::min<size_t>(length, p + (block - (at + p) % block)); };
  const bool zero = IsZero(buf + pos, block_end(pos) - pos);
  size_t end = block_end(pos);
  while (end < length && IsZero(buf + end, block_end(end) - end) == zero) end = block_end(end);
  *run = {pos, end, zero};
  *cursor = end;
  return true;
}

}  // namespace clonekit
