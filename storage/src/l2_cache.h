// L2Cache (internal): a bounded, thread-safe cache of one layer's L2 tables.
//
// A front-to-back collapse needs one table at a time, but an NBD or FUSE
// server answers reads all over the disk from many threads at once. Tables
// are immutable once read, so the cache hands out shared pointers: a reader
// keeps its table alive even if another thread evicts it meanwhile. The
// entries are split over a few shards, each with its own short-held mutex
// (no I/O under a lock), so parallel readers rarely meet.
#ifndef CLONEKIT_STORAGE_L2_CACHE_H_
#define CLONEKIT_STORAGE_L2_CACHE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clonekit {

class L2Cache {
 public:
  using Table = std::shared_ptr<const uint8_t>;  // a table's bytes (cluster size)

  // Holds at most max(1, capacity_tables) tables.
  explicit L2Cache(size_t capacity_tables = 1) { SetCapacity(capacity_tables); }

  // Drops every table; not to be called while readers use the cache.
  void SetCapacity(size_t capacity_tables);

  // The cached table for L1 index `key`, or null.
  Table Find(uint64_t key);

  // Caches `table` under `key` and returns what is cached for it afterwards
  // (an earlier insert by another thread wins, so all readers share one).
  Table Insert(uint64_t key, Table table);

 private:
  struct Shard {
    std::mutex mu;
    std::list<std::pair<uint64_t, Table>> lru;  // most recent first
    std::unordered_map<uint64_t, std::list<std::pair<uint64_t, Table>>::iterator> index;
    size_t capacity = 1;
  };
  static constexpr size_t kMaxShards = 8;

  Shard& ShardFor(uint64_t key) { return shards_[key % shards_.size()]; }

  std::vector<Shard> shards_;
};

}  // namespace clonekit

#endif  // CLONEKIT_STORAGE_L2_CACHE_H_
