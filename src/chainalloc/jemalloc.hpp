// Jemalloc: jemalloc through its non-standard API only (mallocx/rallocx/xallocx/dallocx/
// sallocx/nallocx), never through its `malloc`, which an interposer may have replaced.
// Link with jemalloc (meson: dependency('jemalloc')). `Jemalloc` uses jemalloc's own arenas and
// does not own anything; `JemallocIn<Arenas>` allocates from arenas that carve one range, and
// owns it (see JemallocArenas).
#pragma once

#include "allocator.hpp"

#include <concepts>

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

/// Where a ranged Jemalloc's blocks come from: arenas of its own whose extent hooks carve from
/// one reserved range (the preload's jemalloc_arenas), so that `owns` is a range test and a
/// Fallback can route pointers to it. `flags()` selects the calling thread's arena
/// (MALLOCX_ARENA, MALLOCX_TCACHE); `owns(p)` reads no memory.
template <class R>
concept JemallocArenas = requires(const R& r, const void* p) {
    { r.owns(p) } -> std::same_as<bool>;
    { r.flags() } -> std::same_as<int>;
};

/// jemalloc's own arenas: no range, so no `owns`.
struct AnyArena {};

template <class Arenas = AnyArena>
class JemallocIn {
    static constexpr bool kRanged = JemallocArenas<Arenas>;

public:
    static constexpr std::size_t alignment = kMinAlign;
    static constexpr int kZero = 0x40;  // MALLOCX_ZERO

    JemallocIn() = default;
    explicit JemallocIn(Arenas arenas) noexcept
        requires kRanged
        : arenas_(arenas) {}

    /// MALLOCX_ALIGN(a): log2 of the alignment in the low bits. Always at least 16: jemalloc's
    /// own default for a request under 16 bytes is its 8-byte class, below malloc's guarantee.
    static int align_flag(std::size_t align) noexcept {
        return __builtin_ctzl(align < kMinAlign ? kMinAlign : align);
    }

    // mallocx(0) is undefined in jemalloc's API: ask for one byte instead.
    Block allocate(std::size_t n, std::size_t align = kMinAlign) noexcept {
        return make(n, align_flag(align));
    }

    /// MALLOCX_ZERO: jemalloc knows which of its pages are fresh (already zero).
    Block allocate_zeroed(std::size_t n, std::size_t align = kMinAlign) noexcept {
        return make(n, align_flag(align) | kZero);
    }

    // Unsized: Block::size may be the request, which for an over-aligned block does not name
    // jemalloc's size class, and sdallocx with a wrong class corrupts the heap.
    void deallocate(Block b) noexcept {
        if (b.ptr) dallocx(b.ptr, 0);
    }

    /// Ranged: the arenas' range, nothing else.
    bool owns(const void* p) const noexcept
        requires kRanged
    {
        return arenas_.owns(p);
    }

    /// Keeps the default alignment only (as realloc does). Ranged, never rallocx: its result
    /// may lie outside the range (see make), and by then it has freed b; so in place when the
    /// block ends up in n's own class, else a new block, the copy, then the free.
    bool reallocate(Block& b, std::size_t n) noexcept {
        if (!b.ptr) {
            b = allocate(n);
            return static_cast<bool>(b);
        }
        if constexpr (kRanged) {
            int flags = align_flag(kMinAlign);
            std::size_t got = xallocx(b.ptr, n ? n : 1, 0, flags);
            if (got == nallocx(n ? n : 1, flags)) {
                b.size = got;
                return true;
            }
            return reallocate_by_copy(*this, b, n);
        } else {
            void* p = rallocx(b.ptr, n ? n : 1, align_flag(kMinAlign));
            if (!p) return false;
            b = {p, sallocx(p, 0)};
            return true;
        }
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

private:
    // Ranged: from the calling thread's arena. In one state jemalloc ignores the arena it is
    // asked for (a thread whose jemalloc state is torn down, allocating in a late TLS
    // destructor, gets arena 0, which may lie outside the range); such a block is given back
    // and the request fails, so "in the range" keeps meaning "ours" and a Fallback moves on.
    Block make(std::size_t n, int flags) noexcept {
        if constexpr (kRanged) flags |= arenas_.flags();
        void* p = mallocx(n ? n : 1, flags);
        if (!p) return {};
        if constexpr (kRanged) {
            if (!arenas_.owns(p)) [[unlikely]] {
                dallocx(p, 0);
                return {};
            }
        }
        return {p, sallocx(p, 0)};
    }

    [[no_unique_address]] Arenas arenas_{};
};

/// jemalloc's own arenas, no owns: a terminal that takes whatever reaches it.
using Jemalloc = JemallocIn<>;

}  // namespace chainalloc
