// The compact log (format version 2, scripts/LOG-FORMAT.md): the byte layout, shared by the
// writer (compact_sink.cpp) and the compiled reader, so the two cannot drift apart.
//
// A file is a text header line padded with NULs to a page, then chunks. Each thread writes
// records into chunks of its own, reserved with one atomic add, so no lock is shared by all
// threads; the reader merges the threads' records by time. A record is a tag byte and LEB128
// varints, each relative to the same thread's previous record (time) or pointer: a malloc or
// a free takes 5 to 8 bytes where its text line took 35.
//
// Nothing here allocates or throws: the writer runs inside malloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace chainalloc::logformat {

inline constexpr unsigned kVersion = 2;
inline constexpr std::size_t kPage = 4096;  // header padding and chunk alignment
inline constexpr std::uint32_t kChunkMagic = 0x6b6e6863;  // "chnk" in the file

// At the start of every chunk. The bases are the thread's state before the chunk's first
// record, so any chunk decodes on its own (a reader may skip a damaged one).
struct ChunkHeader {
    std::uint32_t magic;
    std::uint32_t size;  // bytes, this header included; a multiple of kPage
    std::uint32_t tid;
    std::uint32_t reserved;
    std::uint64_t t_base;    // ns since start_unix_ns
    std::uint64_t ptr_base;  // the previous pointer
};
static_assert(sizeof(ChunkHeader) == 32);

// Tag byte: op in bits 0-2 (never 0: a 0 byte ends the chunk's records), the serving layer in
// bits 3-6 (kFailedLayer: the call failed), bit 7 set when a stack id follows.
enum class Op : std::uint8_t { malloc = 1, calloc = 2, aligned = 3, realloc = 4, free = 5, meta = 6 };
inline constexpr unsigned kFailedLayer = 15;
inline constexpr std::uint8_t kHasStack = 0x80;
inline constexpr std::uint8_t tag(Op op, unsigned layer, bool stack) noexcept {
    return static_cast<std::uint8_t>(static_cast<unsigned>(op) | (layer & 15) << 3 | (stack ? kHasStack : 0));
}

// Meta records (Op::meta, layer bits 0): the kind follows the time delta.
enum class Meta : std::uint8_t { module = 1, stack = 2, text = 3 };

// Pointer codes, 2 low bits: 0 delta/16 from the previous pointer (aligned blocks), 1 delta in
// bytes, 2 null, 3 not sampled ('-'). Only real pointers move the previous one.
inline constexpr std::uint64_t kNullCode = 2, kUnsampledCode = 3;
inline constexpr std::uintptr_t kUnsampled = 1;  // the writer's stand-in for '-' (LogEvent's too)

inline constexpr std::uint64_t zigzag(std::int64_t v) noexcept {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline constexpr std::int64_t unzigzag(std::uint64_t v) noexcept {
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

/// Writes a record's body (the writer stores its tag byte last) where the caller has room
/// (kMaxRecord for an event).
struct Encoder {
    std::uint8_t* out;
    std::size_t len = 0;

    void var(std::uint64_t v) noexcept {
        while (v >= 0x80) {
            out[len++] = static_cast<std::uint8_t>(v | 0x80);
            v >>= 7;
        }
        out[len++] = static_cast<std::uint8_t>(v);
    }
    void bytes(const void* p, std::size_t n) noexcept {
        var(n);
        std::memcpy(out + len, p, n);
        len += n;
    }
    void pointer(std::uintptr_t p, std::uintptr_t& prev) noexcept {
        if (p == 0) return var(kNullCode);
        if (p == kUnsampled) return var(kUnsampledCode);
        auto d = static_cast<std::int64_t>(p - prev);
        prev = p;
        if ((d & 15) == 0) return var(zigzag(d / 16) << 2);
        var(zigzag(d) << 2 | 1);
    }
};

// tag, dt, align, size, two pointers, a stack id: 1 + 6 varints of at most 10 bytes.
inline constexpr std::size_t kMaxRecord = 64;

}  // namespace chainalloc::logformat
