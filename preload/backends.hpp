// The terminal layers: glibc (through chainalloc::libc, i.e. __libc_*, so never our own
// malloc), jemalloc (through its *allocx API only) and null. The chain calls them by kind.
#pragma once

#include "chainalloc/jemalloc.hpp"
#include "chainalloc/system.hpp"
#include "jemalloc_arenas.hpp"

#include <cstring>

namespace chainalloc::preload {

inline void* system_allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    if (align <= kMinAlign) return zero ? libc::calloc(1, n) : libc::malloc(n);
    void* p = libc::memalign(align, n);
    if (p && zero) std::memset(p, 0, n);
    return p;
}

/// From the calling thread's arena. In one state jemalloc ignores the arena it is asked for: a
/// thread whose jemalloc state was already torn down, allocating in a late TLS destructor,
/// gets a block of arena 0, which may come from before our hooks (outside the range). Such a
/// block is given back and the request served by glibc, so "in the range" keeps meaning
/// "jemalloc's" and everything else stays glibc's.
inline void* jemalloc_allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    int flags = Jemalloc::align_flag(align) | (zero ? Jemalloc::kZero : 0) | jemalloc_arenas::arena_flags();
    void* p = mallocx(n ? n : 1, flags);
    if (!p || jemalloc_arenas::owns(p)) [[likely]] return p;
    dallocx(p, 0);
    return system_allocate(n, align, zero);
}

/// In place when jemalloc can (xallocx); otherwise a new block, a copy, then the free, in
/// that order, so a failure leaves p untouched as realloc must. Not rallocx: its result may lie
/// outside the range (above), and by the time that shows, rallocx has freed p, so a failed
/// move to glibc would lose the caller's data.
inline void* jemalloc_reallocate(void* p, std::size_t n) noexcept {
    // In place only when the block ends up in n's own size class: xallocx that cannot shrink
    // returns the old size, and a 1 MiB block cut to 16 bytes should not keep its megabyte.
    int flags = Jemalloc::align_flag(kMinAlign);
    if (xallocx(p, n, 0, flags) == nallocx(n, flags)) return p;
    void* q = jemalloc_allocate(n, kMinAlign, false);
    if (!q) return nullptr;
    std::size_t old = Jemalloc::usable_size(p);
    std::memcpy(q, p, n < old ? n : old);
    dallocx(p, 0);
    return q;
}

/// glibc's malloc_usable_size, for blocks glibc made (looked up on first use; see runtime.cpp).
std::size_t system_usable_size(void* p) noexcept;

}  // namespace chainalloc::preload
