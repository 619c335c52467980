// The terminal layers: glibc (through chainalloc::libc, i.e. __libc_*, so never our own
// malloc), jemalloc (through the plugin, jemalloc_plugin.hpp) and null. The chain calls them
// by kind.
#pragma once

#include "chainalloc/system.hpp"
#include "jemalloc_plugin.hpp"

#include <cstring>

namespace chainalloc::preload {

inline void* system_allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    if (align <= kMinAlign) return zero ? libc::calloc(1, n) : libc::malloc(n);
    void* p = libc::memalign(align, n);
    if (p && zero) std::memset(p, 0, n);
    return p;
}

/// The jemalloc terminal's functions, once load_jemalloc() found the plugin (nullptr before).
extern const JemallocPlugin* g_jemalloc;

/// Finds the plugin (jemalloc_loader.cpp); false, with one line on stderr, when it cannot.
bool load_jemalloc() noexcept;

/// glibc's malloc_usable_size, for blocks glibc made (looked up on first use; see runtime.cpp).
std::size_t system_usable_size(void* p) noexcept;

}  // namespace chainalloc::preload
