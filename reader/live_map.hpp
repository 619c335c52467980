// The blocks live at a time, and the freed pointers remembered (tombstones) to tell a double
// free from a free of an unknown pointer: Python's `live` dict. Open addressing with linear
// probing on the pointer's value, one 64-byte record per slot, so a lookup is one cache miss.
// Entries are never removed one by one (a freed block becomes a tombstone in place), only all
// tombstones at once (forget_tombstones), so probing needs no deletion markers. Pointers not
// written in canonical hex (and "0") are rare, and kept in a side map by their text.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "record.hpp"

namespace logscan {

struct Block {
  std::uint64_t key = 0;           // canonical pointer; 0 marks an empty slot
  std::int64_t size = 0;
  std::uint64_t t = 0;             // t_ns when canonical
  std::uint64_t n = 0;             // event index of the allocation
  std::uint64_t thread_event = 0;  // the thread's event count at the allocation
  double w = 1;                    // weight (sampling by bytes)
  std::uint32_t thread = 0;        // index into the thread table
  std::uint32_t site = 0;          // site index + 1; 0 = no stack id
  std::uint32_t t_text = 0;        // 0 = canonical t; else index + 1 into the time texts
  Op op = Op::malloc;
  bool live = false;               // false: a tombstone
};

class LiveMap {
 public:
  LiveMap() { slots_.resize(1 << 12); }

  // The entry for p (live or tombstone), or null.
  Block* find(const Word& p) {
    if (!fast(p)) {
      auto it = side_.find(std::string(text_of(p)));
      return it == side_.end() ? nullptr : &it->second;
    }
    for (std::size_t i = home(p.value);; i = (i + 1) & mask()) {
      Block& b = slots_[i];
      if (b.key == p.value) return &b;
      if (b.key == 0) return nullptr;
    }
  }

  // The entry for p, added (not live) when absent. Invalidates earlier pointers.
  Block& slot(const Word& p) {
    if (!fast(p)) return side_[std::string(text_of(p))];
    if (2 * (used_ + 1) > slots_.size()) grow(2 * slots_.size());
    for (std::size_t i = home(p.value);; i = (i + 1) & mask()) {
      Block& b = slots_[i];
      if (b.key == p.value) return b;
      if (b.key == 0) {
        ++used_;
        b.key = p.value;
        return b;
      }
    }
  }

  std::size_t size() const { return used_ + side_.size(); }   // live + tombstones

  void forget_tombstones();

  // fn(text of the pointer as the log wrote it, block) for each live block.
  template <class Fn> void each_live(Fn fn) const {
    char hex[17];
    for (const Block& b : slots_)
      if (b.key != 0 && b.live) fn(std::string_view(hex, to_hex(b.key, hex)), b);
    for (const auto& [k, b] : side_)
      if (b.live) fn(std::string_view(k), b);
  }

 private:
  static bool fast(const Word& p) { return p.canonical() && p.value != 0; }
  static std::string_view text_of(const Word& p) { return p.canonical() ? "0" : p.text; }
  static std::size_t to_hex(std::uint64_t v, char* out);
  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(std::uint64_t key) const {
    // Fibonacci hashing: addresses share their low bits (alignment), so take the high ones.
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void grow(std::size_t capacity);

  std::vector<Block> slots_;
  std::size_t used_ = 0;
  unsigned shift_ = 64 - 12;
  std::unordered_map<std::string, Block> side_;
};

}  // namespace logscan
