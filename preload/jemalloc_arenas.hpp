// jemalloc behind the chain, with memory we can recognise. The jemalloc layer allocates from
// arenas of its own, created with extent hooks that carve every extent from one address range
// reserved here; so `owns` is a range test, and a pointer jemalloc did not make (from
// __libc_malloc, or a library bound to glibc with RTLD_DEEPBIND) goes to glibc instead of
// corrupting jemalloc. Explicit arenas also keep jemalloc's automatic "huge" arena (which
// would map outside the range) out of the picture.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload::jemalloc_arenas {

/// Reserves the range and creates the arenas; false if jemalloc or the reservation refused
/// (the caller falls back). Runs inside initialisation: allocates from no heap of ours.
bool init() noexcept;

/// mallocx/rallocx flags that select the calling thread's arena.
int arena_flags() noexcept;

bool owns(const void* p) noexcept;

}  // namespace chainalloc::preload::jemalloc_arenas
