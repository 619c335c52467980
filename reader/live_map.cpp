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

void LiveMap::grow(std::size_t capacity) {
  std::vector<Block> old;
  old.swap(slots_);
  slots_.assign(capacity, Block{});
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  for (const Block& b : old) {
    if (b.key == 0) continue;
    std::size_t i = home(b.key);
    while (slots_[i].key != 0) i = (i + 1) & mask();
    slots_[i] = b;
  }
}

void LiveMap::forget_tombstones() {
  std::size_t live = 0;
  for (const Block& b : slots_) live += b.key != 0 && b.live;
  std::vector<Block> old;
  old.swap(slots_);
  // Room for twice the live blocks, so the table shrinks back after a burst of frees.
  std::size_t capacity = std::size_t{1} << 12;
  while (capacity < 2 * (live + 1)) capacity *= 2;
  slots_.assign(capacity, Block{});
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  used_ = 0;
  for (const Block& b : old) {
    if (b.key == 0 || !b.live) continue;
    std::size_t i = home(b.key);
    while (slots_[i].key != 0) i = (i + 1) & mask();
    slots_[i] = b;
    ++used_;
  }
  std::erase_if(side_, [](const auto& kv) { return !kv.second.live; });
}

}  // namespace logscan
