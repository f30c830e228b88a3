#include "l2_cache.h"

#include <algorithm>

namespace clonekit {

void L2Cache::SetCapacity(size_t capacity_tables) {
  capacity_tables = std::max<size_t>(1, capacity_tables);
  // Consecutive L1 indexes land in different shards; each shard gets an
  // equal part of the capacity, so the total stays within the bound.
  const size_t shards = std::min(kMaxShards, capacity_tables);
  shards_ = std::vector<Shard>(shards);
  for (Shard& s : shards_) s.capacity = capacity_tables / shards;
}

L2Cache::Table L2Cache::Find(uint64_t key) {
  Shard& s = ShardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

L2Cache::Table L2Cache::Insert(uint64_t key, Table table) {
  Table evicted;  // released after the lock: freeing 2 MiB is not free
  Shard& s = ShardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.index.find(key);
  if (it != s.index.end()) return it->second->second;
  s.lru.emplace_front(key, table);
  s.index[key] = s.lru.begin();
  if (s.lru.size() > s.capacity) {
    evicted = std::move(s.lru.back().second);
    s.index.erase(s.lru.back().first);
    s.lru.pop_back();
  }
  return table;
}

}  // namespace clonekit
