#include "live_map.hpp"

namespace logscan {

std::size_t LiveMap::to_hex(std::uint64_t v, char* out) {
  static const char digits[] = "0123456789abcdef";
  char tmp[16];
  std::size_t n = 0;
  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

std::uint32_t LiveMap::new_block() {
  if (free_.empty()) {
    if ((pool_ & (kChunk - 1)) == 0) chunks_.emplace_back(kChunk);
    return pool_++;
  }
  std::uint32_t i = free_.back();
  free_.pop_back();
  block(i) = Block{};
  return i;
}

Block& LiveMap::slot(const Word& p) {
  if (!fast(p)) return side_[std::string(text_of(p))];
  std::uint32_t& b = map_.slot(p.value);
  if (b == PointerMap::kNone || b == kDead) b = new_block();   // new, or in place of a tombstone
  return block(b);
}

LiveMap::Taken LiveMap::take(const Word& p, Block& out) {
  if (!fast(p)) {
    auto it = side_.find(std::string(text_of(p)));
    if (it == side_.end()) return Taken::unknown;
    if (!it->second.live) return Taken::tombstone;
    out = it->second;
    it->second.live = false;
    return Taken::live;
  }
  std::uint32_t* b = map_.find(p.value);
  if (!b) return Taken::unknown;
  if (*b == kDead) return Taken::tombstone;
  out = block(*b);
  free_.push_back(*b);
  *b = kDead;
  return Taken::live;
}

// The live entries only, in a table with room for twice them (so it shrinks back after a burst
// of frees) and a pool packed again, so memory follows the live blocks.
void LiveMap::forget_tombstones() {
  PointerMap map(2 * (pool_ - free_.size()));
  std::vector<std::vector<Block>> chunks;
  chunks.swap(chunks_);
  pool_ = 0;
  free_ = {};
  map_.each([&](std::uint64_t key, std::uint32_t b) {
    if (b == kDead) return;
    std::uint32_t& moved = map.slot(key);
    moved = new_block();
    block(moved) = chunks[b >> kChunkBits][b & (kChunk - 1)];
  });
  map_ = std::move(map);
  std::erase_if(side_, [](const auto& kv) { return !kv.second.live; });
}

}  // namespace logscan
