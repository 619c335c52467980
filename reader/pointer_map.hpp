// A pointer (never 0) -> a 32-bit index: open addressing with linear probing, the key and its
// value in one 16-byte slot, so a lookup is one cache miss. Deletion shifts the later entries
// of a run back, so no tombstone is left. At most 3/4 full. The reader's live blocks
// (live_map.hpp) and the packer's (pack.cpp) are kept in one.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace logscan {

class PointerMap {
 public:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};

  // Room for `entries` without growing.
  explicit PointerMap(std::size_t entries = 0) {
    std::size_t capacity = std::size_t{1} << 12;
    while (3 * capacity < 4 * (entries + 1)) capacity *= 2;
    resize(capacity);
  }

  std::uint32_t* find(std::uint64_t key) {
    for (std::size_t i = home(key);; i = next(i)) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == 0) return nullptr;
    }
  }

  // The value of key, kNone when it was added now.
  std::uint32_t& slot(std::uint64_t key) {
    if (4 * (used_ + 1) > 3 * slots_.size()) grow();
    std::size_t i = home(key);
    for (; slots_[i].key != key; i = next(i))
      if (slots_[i].key == 0) {
        slots_[i] = {key, kNone};
        ++used_;
        break;
      }
    return slots_[i].value;
  }

  // key must be present.
  void erase(std::uint64_t key) {
    std::size_t i = home(key);
    while (slots_[i].key != key) i = next(i);
    // Move back every later entry of the run that may sit at i: one whose home is not in
    // the cyclic range (i, j].
    for (std::size_t j = next(i); slots_[j].key != 0; j = next(j)) {
      std::size_t h = home(slots_[j].key);
      if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i].key = 0;
    --used_;
  }

  // The slot where key's search starts, fetched ahead of its use.
  void prefetch(std::uint64_t key) const { __builtin_prefetch(&slots_[home(key)]); }

  std::size_t size() const { return used_; }

  // fn(key, value) for each entry.
  template <class Fn> void each(Fn fn) const {
    for (const Slot& s : slots_)
      if (s.key != 0) fn(s.key, s.value);
  }

 private:
  struct Slot {
    std::uint64_t key = 0;   // 0: empty
    std::uint32_t value = 0;
  };

  // Fibonacci hashing: pointers share their low bits (alignment), so take the product's high ones.
  std::size_t home(std::uint64_t key) const { return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void resize(std::size_t capacity) {
    slots_.assign(capacity, Slot{});
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
    used_ = 0;
  }

  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    resize(old.size() * 2);
    for (const Slot& s : old)
      if (s.key != 0) slot(s.key) = s.value;
  }

  std::vector<Slot> slots_;
  std::size_t used_ = 0;
  unsigned shift_ = 0;
};

}  // namespace logscan
