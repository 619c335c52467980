// The packed log (format version 3, scripts/LOG-FORMAT.md "Packed logs"): what `chainalloc log
// pack` keeps of a log, for keeping or sending. It drops what reports by site never need:
// addresses (a block is named by its kind, as heaptrack's trace does), time finer than a
// step, and the per-thread record framing. What is left repeats, so zstd takes it to a small
// fraction of a byte an event on repetitive programs. The pack is written by pack.cpp and
// decoded back into version 1 lines by packed_source.cpp and scripts/chainalloc_log/packed.py.
#pragma once

#include <cstdint>

namespace logscan::packed {

inline constexpr unsigned kVersion = 3;
inline constexpr std::uint64_t kTimeStepNs = 1000000;   // events keep their millisecond

// A record is a tag byte and LEB128 fields.
enum Tag : std::uint8_t {
  kText = 1,     // len, bytes: a #M, #S, footer or malformed line, without its newline
  kTime = 2,     // steps since the last kTime (the clock starts at 0)
  kThread = 3,   // tid: the thread of the events that follow
  kKind = 4,     // op, layer+1 (0: none), size, align, stack+1 (0: none): the next kind's id
  kAlloc = 5,    // kind, new          (malloc, calloc, aligned)
  kFree = 6,     // old
  kRealloc = 7,  // kind, old, new
  kCut = 8,      // len, bytes: the log ended inside this line (cut short), or inside a chunk
};

// A kind, the fields of a kKind record in their order: op (an index into kOps), the serving
// layer + 1 and the stack id + 1 (0: none), size and align as requested.
struct Kind {
  std::uint64_t op, layer1, size, align, stack1;
  bool operator==(const Kind&) const = default;
};

// The kind's op, in the order of the v1 letters m c a r.
inline constexpr char kOps[] = {'m', 'c', 'a', 'r'};

// A block that an event takes (old), by its place among its kind's live blocks in the
// decoder's order: kOldOldest then the kind (the oldest), or kOldNewest + j then the kind (the
// j-th newest, 0 the newest). The packer says "the oldest" when that block and the real one
// are both past the temporary window (their threads have each gone on by more than
// TEMP_WINDOW events since they made them; parse.py counts a block freed by its thread within
// it as temporary): the decoder then frees the oldest instead, another block of the same kind
// (size, stack, layer), the real one goes on under the oldest's allocation, and neither can
// be a temporary any more, so no count, byte or temporary changes; the packer follows the
// swap. Otherwise it names the real block's place. Naming places only where they matter is
// what keeps a pack small: the places of other frees are close to random.
inline constexpr std::uint64_t kOldNull = 0, kOldDash = 1, kOldUnknown = 2, kOldOldest = 3, kOldNewest = 4;
inline constexpr std::uint64_t kTempWindow = 8;   // parse.py's TEMP_WINDOW
// A block that an event makes (new): in place keeps the old block's name.
inline constexpr std::uint64_t kNewNull = 0, kNewDash = 1, kNewBlock = 2, kNewInPlace = 3;

}  // namespace logscan::packed
