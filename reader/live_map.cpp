#include "live_map.hpp"

#include <bit>

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
  if (4 * (used_ + 1) > 3 * slots_.size()) rebuild(2 * slots_.size(), true);   // at most 3/4 full
  for (std::size_t i = home(p.value);; i = (i + 1) & mask()) {
    Slot& s = slots_[i];
    if (s.key == p.value) {
      if (s.block == kDead) s.block = new_block();
      return block(s.block);
    }
    if (s.key == 0) {
      ++used_;
      s.key = p.value;
      s.block = new_block();
      return block(s.block);
    }
  }
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
  for (std::size_t i = home(p.value);; i = (i + 1) & mask()) {
    Slot& s = slots_[i];
    if (s.key == p.value) {
      if (s.block == kDead) return Taken::tombstone;
      out = block(s.block);
      free_.push_back(s.block);
      s.block = kDead;
      return Taken::live;
    }
    if (s.key == 0) return Taken::unknown;
  }
}

// A table of `capacity` slots (a power of two) with the live entries, and the tombstones if
// kept; without them, the pool is packed again too, so memory follows the live blocks.
void LiveMap::rebuild(std::size_t capacity, bool keep_tombstones) {
  std::vector<Slot> old(capacity);
  old.swap(slots_);
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  std::vector<std::vector<Block>> old_chunks;
  if (!keep_tombstones) {
    old_chunks.swap(chunks_);
    pool_ = 0;
    free_ = {};
  }
  used_ = 0;
  for (const Slot& s : old) {
    if (s.key == 0 || (s.block == kDead && !keep_tombstones)) continue;
    std::size_t i = home(s.key);
    while (slots_[i].key != 0) i = (i + 1) & mask();
    slots_[i] = s;
    if (!keep_tombstones) {
      slots_[i].block = new_block();
      block(slots_[i].block) = old_chunks[s.block >> kChunkBits][s.block & (kChunk - 1)];
    }
    ++used_;
  }
}

void LiveMap::forget_tombstones() {
  std::size_t live = pool_ - free_.size();
  // Room for twice the live blocks, so the table shrinks back after a burst of frees.
  std::size_t capacity = kFirst;
  while (capacity < 2 * (live + 1)) capacity *= 2;
  rebuild(capacity, false);
  std::erase_if(side_, [](const auto& kv) { return !kv.second.live; });
}

}  // namespace logscan
