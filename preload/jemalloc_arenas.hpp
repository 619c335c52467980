// jemalloc behind the chain, with memory we can recognise. The jemalloc layer allocates from
// arenas of its own, created with extent hooks that carve every extent from chunks mapped
// here as the arenas grow and marked in a segment map; so `owns` is one load, and a pointer
// jemalloc did not make (from __libc_malloc, or a library bound to glibc with RTLD_DEEPBIND)
// goes to glibc instead of corrupting jemalloc. Explicit arenas also keep jemalloc's automatic
// "huge" arena (which would map outside the chunks) out of the picture.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload::jemalloc_arenas {

/// Creates the arenas; false if jemalloc refused
/// (the caller falls back). Runs inside initialisation: allocates from no heap of ours.
bool init() noexcept;

/// mallocx/rallocx flags that select the calling thread's arena.
int arena_flags() noexcept;

bool owns(const void* p) noexcept;

}  // namespace chainalloc::preload::jemalloc_arenas
