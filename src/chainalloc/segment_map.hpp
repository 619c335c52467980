// SegmentMap: one bit per 4 MiB of the address space, set for every segment a page heap
// (page_heap.hpp) maps. It answers "is this address in a segment of ours?" in one load, for any
// pointer, without touching the pointed-to memory: that is how a free-list layer owns its
// pointers now that its memory is no longer one reserved range.
//
// 2^47 bytes of user address space / 4 MiB = 2^25 bits = 4 MiB of .bss: virtual size only;
// a page of it becomes resident when a segment in its 128 GiB stretch is first mapped.
// Addresses at or above 2^47 (5-level paging, only when asked for) are never ours.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc {

inline constexpr unsigned kSegmentShift = 22;
inline constexpr std::size_t kSegmentSize = std::size_t{1} << kSegmentShift;

class SegmentMap {
public:
    static constexpr unsigned kAddressBits = 47;

    bool contains(const void* p) const noexcept {
        auto a = reinterpret_cast<std::uintptr_t>(p);
        if (a >> kAddressBits) return false;
        std::uintptr_t i = a >> kSegmentShift;
        return (__atomic_load_n(&bits_[i >> 6], __ATOMIC_RELAXED) >> (i & 63)) & 1;
    }

    /// Marks [base, base + size) as ours; base is segment-aligned.
    void add(std::uintptr_t base, std::size_t size) noexcept { update(base, size, true); }
    void remove(std::uintptr_t base, std::size_t size) noexcept { update(base, size, false); }

private:
    void update(std::uintptr_t base, std::size_t size, bool on) noexcept {
        for (std::uintptr_t a = base; a < base + size; a += kSegmentSize) {
            std::uintptr_t i = a >> kSegmentShift;
            std::uint64_t bit = std::uint64_t{1} << (i & 63);
            if (on)
                __atomic_fetch_or(&bits_[i >> 6], bit, __ATOMIC_RELEASE);
            else
                __atomic_fetch_and(&bits_[i >> 6], ~bit, __ATOMIC_RELEASE);
        }
    }

    std::uint64_t bits_[(std::size_t{1} << (kAddressBits - kSegmentShift)) / 64];
};

/// The process's map, shared by every page heap (zero-initialised, in .bss).
inline constinit SegmentMap g_segment_map{};

}  // namespace chainalloc
