// The terminal layers: glibc (through chainalloc::libc, i.e. __libc_*, so never our own
// malloc), jemalloc (through its *allocx API only) and null. The chain calls them by kind.
#pragma once

#include "chainalloc/jemalloc.hpp"
#include "chainalloc/system.hpp"

#include <cstring>

namespace chainalloc::preload {

inline void* system_allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    if (align <= kMinAlign) return zero ? libc::calloc(1, n) : libc::malloc(n);
    void* p = libc::memalign(align, n);
    if (p && zero) std::memset(p, 0, n);
    return p;
}

inline void* jemalloc_allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    return mallocx(n ? n : 1, Jemalloc::align_flag(align) | (zero ? Jemalloc::kZero : 0));
}

/// glibc's malloc_usable_size, for blocks glibc made (looked up on first use; see runtime.cpp).
std::size_t system_usable_size(void* p) noexcept;

}  // namespace chainalloc::preload
