// The blocks live at a time, and the freed pointers remembered (tombstones) to tell a double
// free from a free of an unknown pointer: Python's `live` dict. A PointerMap from the pointer
// to the index of its block in a pool, or to kDead for a tombstone, so the tombstones, often
// more than the live blocks (python3: 1.1M entries when 0.3M were live), cost a 16-byte slot
// and no block. Tombstones go all at once (forget_tombstones), which packs the pool too.
// Pointers not written in canonical hex (and "0") are rare, and kept in a side map by their
// text, tombstones in place.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "pointer_map.hpp"
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
  // A free of p: when live, its block is copied to `out` and goes, its tombstone stays.
  enum class Taken { live, tombstone, unknown };
  Taken take(const Word& p, Block& out);

  // The block for p: the live one, or a new one (not live) in place of a tombstone or none.
  // Invalidates earlier pointers.
  Block& slot(const Word& p);

  // The slot where p's search starts, fetched ahead of its use.
  void prefetch(std::uint64_t p) const { map_.prefetch(p); }

  std::size_t size() const { return map_.size() + side_.size(); }   // live + tombstones

  void forget_tombstones();

  // fn(text of the pointer as the log wrote it, block) for each live block.
  template <class Fn> void each_live(Fn fn) const {
    char hex[17];
    map_.each([&](std::uint64_t key, std::uint32_t b) {
      if (b != kDead) fn(std::string_view(hex, to_hex(key, hex)), block(b));
    });
    for (const auto& [k, b] : side_)
      if (b.live) fn(std::string_view(k), b);
  }

 private:
  static constexpr std::uint32_t kDead = PointerMap::kNone - 1;

  static bool fast(const Word& p) { return p.canonical() && p.value != 0; }
  static std::string_view text_of(const Word& p) { return p.canonical() ? "0" : p.text; }
  static std::size_t to_hex(std::uint64_t v, char* out);
  std::uint32_t new_block();

  // The pool: blocks in chunks of kChunk that never move, so it grows by a chunk, without the
  // copy (and the room for twice the blocks) of a vector that doubles.
  static constexpr unsigned kChunkBits = 14;
  static constexpr std::uint32_t kChunk = 1u << kChunkBits;
  Block& block(std::uint32_t i) { return chunks_[i >> kChunkBits][i & (kChunk - 1)]; }
  const Block& block(std::uint32_t i) const { return chunks_[i >> kChunkBits][i & (kChunk - 1)]; }

  PointerMap map_;
  std::vector<std::vector<Block>> chunks_;   // the live blocks, and free places (free_)
  std::uint32_t pool_ = 0;                   // places handed out so far
  std::vector<std::uint32_t> free_;          // places a take left
  std::unordered_map<std::string, Block> side_;
};

}  // namespace logscan
