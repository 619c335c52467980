// The blocks live at a time, and the freed pointers remembered (tombstones) to tell a double
// free from a free of an unknown pointer: Python's `live` dict. Open addressing with linear
// probing on the pointer's value; a slot is the pointer and the index of its block in a pool
// (or kDead: a tombstone), 16 bytes, so the tombstones, often more than the live blocks
// (python3: 1.1M entries when 0.3M were live), cost a slot and no block. Entries are never
// removed one by one (a freed block's slot becomes a tombstone in place), only all tombstones
// at once (forget_tombstones), so probing needs no deletion markers. Pointers not written in
// canonical hex (and "0") are rare, and kept in a side map by their text, tombstones in place.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "record.hpp"

namespace logscan {

struct Block {
  std::int64_t size = 0;
  std::uint64_t t = 0;             // t_ns when canonical
  std::uint64_t n = 0;             // event index of the allocation
  std::uint64_t thread_event = 0;  // the thread's event count at the allocation
  double w = 1;                    // weight (sampling by bytes)
  std::uint32_t thread = 0;        // index into the thread table
  std::uint32_t site = 0;          // site index + 1; 0 = no stack id
  std::uint32_t t_text = 0;        // 0 = canonical t; else index + 1 into the time texts
  Op op = Op::malloc;
  bool live = false;               // false: not made yet (slot), or a tombstone (side map)
};

class LiveMap {
 public:
  LiveMap() { slots_.resize(kFirst); }

  // A free of p: when live, its block is copied to `out` and goes, its tombstone stays.
  enum class Taken { live, tombstone, unknown };
  Taken take(const Word& p, Block& out);

  // The block for p: the live one, or a new one (not live) in place of a tombstone or none.
  // Invalidates earlier pointers.
  Block& slot(const Word& p);

  // The slot where p's search starts, fetched ahead of its use.
  void prefetch(std::uint64_t p) const { __builtin_prefetch(&slots_[home(p)]); }

  std::size_t size() const { return used_ + side_.size(); }   // live + tombstones

  void forget_tombstones();

  // fn(text of the pointer as the log wrote it, block) for each live block.
  template <class Fn> void each_live(Fn fn) const {
    char hex[17];
    for (const Slot& s : slots_)
      if (s.key != 0 && s.block != kDead) fn(std::string_view(hex, to_hex(s.key, hex)), block(s.block));
    for (const auto& [k, b] : side_)
      if (b.live) fn(std::string_view(k), b);
  }

 private:
  struct Slot {
    std::uint64_t key = 0;      // canonical pointer; 0 marks an empty slot
    std::uint32_t block = 0;    // index into blocks_, or kDead
  };
  static constexpr std::uint32_t kDead = UINT32_MAX;
  static constexpr std::size_t kFirst = 1 << 12;

  static bool fast(const Word& p) { return p.canonical() && p.value != 0; }
  static std::string_view text_of(const Word& p) { return p.canonical() ? "0" : p.text; }
  static std::size_t to_hex(std::uint64_t v, char* out);
  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(std::uint64_t key) const {
    // Fibonacci hashing: addresses share their low bits (alignment), so take the high ones.
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void rebuild(std::size_t capacity, bool keep_tombstones);
  std::uint32_t new_block();

  // The pool: blocks in chunks of kChunk that never move, so it grows by a chunk, without the
  // copy (and the room for twice the blocks) of a vector that doubles.
  static constexpr unsigned kChunkBits = 14;
  static constexpr std::uint32_t kChunk = 1u << kChunkBits;
  Block& block(std::uint32_t i) { return chunks_[i >> kChunkBits][i & (kChunk - 1)]; }
  const Block& block(std::uint32_t i) const { return chunks_[i >> kChunkBits][i & (kChunk - 1)]; }

  std::vector<Slot> slots_;
  std::vector<std::vector<Block>> chunks_;   // the live blocks, and free places (free_)
  std::uint32_t pool_ = 0;                   // places handed out so far
  std::vector<std::uint32_t> free_;          // places a kill left
  std::size_t used_ = 0;                 // slots with a key
  unsigned shift_ = 64 - 12;
  std::unordered_map<std::string, Block> side_;
};

}  // namespace logscan
