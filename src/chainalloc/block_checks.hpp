// BlockChecks: what check=full adds to the checks every free list makes (free_node.hpp), for
// debugging; it costs a pass over each block.
// - A live bit per 16-byte granule in the segment header, set while a block is with the
//   program: a free of a block that is not with it is caught even after the block's free mark
//   was overwritten.
// - Free blocks poisoned past their two list words (up to kPoisonBytes), verified when they
//   are handed out again: a write after free anywhere in that range shows.
#pragma once

#include "misuse.hpp"
#include "page_heap.hpp"

#include <cstdint>

namespace chainalloc {

struct BlockChecks {
    static constexpr unsigned char kPoison = 0xdf;
    static constexpr std::size_t kPoisonBytes = 4096;

    /// A block of `size` bytes going to the program: not live already, poison intact.
    static void allocated(void* p, std::size_t size) noexcept {
        std::uint64_t bit;
        std::uint64_t* word = live_word(p, bit);
        if (__atomic_fetch_or(word, bit, __ATOMIC_RELAXED) & bit) [[unlikely]]
            report_misuse(Misuse::corrupted_list, p, size);
        const auto* bytes = static_cast<const unsigned char*>(p);
        for (std::size_t i = 2 * sizeof(void*); i < poison_end(size); ++i)
            if (bytes[i] != kPoison) [[unlikely]]
                report_misuse(Misuse::corrupted_list, p, size);
    }

    /// A block coming back from the program: live until now, then poisoned.
    static void freed(void* p, std::size_t size) noexcept {
        std::uint64_t bit;
        std::uint64_t* word = live_word(p, bit);
        if (!(__atomic_fetch_and(word, ~bit, __ATOMIC_RELAXED) & bit)) [[unlikely]]
            report_misuse(Misuse::double_free, p, size);
        poison(p, size);
    }

    static void poison(void* p, std::size_t size) noexcept {
        if (size > 2 * sizeof(void*))
            __builtin_memset(static_cast<char*>(p) + 2 * sizeof(void*), kPoison, poison_end(size) - 2 * sizeof(void*));
    }

private:
    static std::size_t poison_end(std::size_t size) noexcept { return size < kPoisonBytes ? size : kPoisonBytes; }
    static std::uint64_t* live_word(const void* p, std::uint64_t& bit) noexcept {
        auto granule = (reinterpret_cast<std::uintptr_t>(p) & (kSegmentSize - 1)) >> 4;
        bit = std::uint64_t{1} << (granule & 63);
        return &segment_of(p)->live[granule >> 6];
    }
};

}  // namespace chainalloc
