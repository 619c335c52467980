// Jemalloc: jemalloc through its non-standard API only (mallocx/rallocx/xallocx/dallocx/
// sallocx/nallocx), never through its `malloc`, which an interposer may have replaced.
// Link with jemalloc (meson: dependency('jemalloc')).
#pragma once

#include "allocator.hpp"

// Declared here rather than through <jemalloc/jemalloc.h>, whose malloc/free declarations
// would collide with a translation unit that defines its own (the preload's).
extern "C" {
void* mallocx(std::size_t size, int flags);
void* rallocx(void* ptr, std::size_t size, int flags);
std::size_t xallocx(void* ptr, std::size_t size, std::size_t extra, int flags);
std::size_t sallocx(const void* ptr, int flags);
void dallocx(void* ptr, int flags);
std::size_t nallocx(std::size_t size, int flags);
}

namespace chainalloc {

struct Jemalloc {
    static constexpr std::size_t alignment = kMinAlign;
    static constexpr int kZero = 0x40;  // MALLOCX_ZERO

    /// MALLOCX_ALIGN(a): log2 of the alignment in the low bits. Always at least 16: jemalloc's
    /// own default for a request under 16 bytes is its 8-byte class, below malloc's guarantee.
    static int align_flag(std::size_t align) noexcept {
        return __builtin_ctzl(align < kMinAlign ? kMinAlign : align);
    }

    // mallocx(0) is undefined in jemalloc's API: ask for one byte instead.
    Block allocate(std::size_t n, std::size_t align = kMinAlign) noexcept {
        void* p = mallocx(n ? n : 1, align_flag(align));
        return p ? Block{p, sallocx(p, 0)} : Block{};
    }

    /// MALLOCX_ZERO: jemalloc knows which of its pages are fresh (already zero).
    Block allocate_zeroed(std::size_t n, std::size_t align = kMinAlign) noexcept {
        void* p = mallocx(n ? n : 1, align_flag(align) | kZero);
        return p ? Block{p, sallocx(p, 0)} : Block{};
    }

    // Unsized: Block::size may be the request, which for an over-aligned block does not name
    // jemalloc's size class, and sdallocx with a wrong class corrupts the heap.
    void deallocate(Block b) noexcept {
        if (b.ptr) dallocx(b.ptr, 0);
    }

    /// Keeps the default alignment only (as realloc does).
    bool reallocate(Block& b, std::size_t n) noexcept {
        if (!b.ptr) {
            b = allocate(n);
            return static_cast<bool>(b);
        }
        void* p = rallocx(b.ptr, n ? n : 1, align_flag(kMinAlign));
        if (!p) return false;
        b = {p, sallocx(p, 0)};
        return true;
    }

    bool expand(Block& b, std::size_t n) noexcept {
        if (!b.ptr) return false;
        std::size_t got = xallocx(b.ptr, n ? n : 1, 0, align_flag(kMinAlign));
        if (got < n) return false;
        b.size = got;
        return true;
    }

    std::size_t good_size(std::size_t n) const noexcept { return nallocx(n ? n : 1, align_flag(kMinAlign)); }
    static std::size_t usable_size(const void* p) noexcept { return sallocx(p, 0); }
};

}  // namespace chainalloc
