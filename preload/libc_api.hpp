// glibc 2.36's malloc contract, in one place, on top of the chain (runtime.hpp). The exported
// functions in override.cpp only forward here (as mimalloc's alloc-override.c does).
//
//  - malloc(0) is a unique pointer; every result is 16-byte aligned (classes are multiples of 16)
//  - sizes above PTRDIFF_MAX fail with ENOMEM before reaching any layer, so they never wrap
//    into a small class; calloc/reallocarray overflow fails the same way (proxies still log
//    these refusals as failed requests)
//  - free(NULL) does nothing; free never changes errno
//  - realloc(NULL, n) is malloc(n) (proxies count and log it as a realloc); realloc(p, 0) frees p and returns NULL (glibc 2.36);
//    a failed realloc returns NULL and leaves p untouched
//  - memalign/aligned_alloc round an alignment that is not a power of two up to the next one
//    (0 and 1 act as malloc) and fail with EINVAL only past the largest power of two (2.36's
//    aligned_alloc is its memalign; 2.38 made it stricter); posix_memalign returns EINVAL
//    unless the alignment is a power-of-two multiple of sizeof(void*), and leaves *memptr
//    alone on failure
#pragma once

#include "proxy_events.hpp"
#include "runtime.hpp"

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <unistd.h>

namespace chainalloc::preload::api {

inline void* fail(int error) noexcept {
    errno = error;
    return nullptr;
}

inline void* refuse(std::size_t n, std::size_t align, bool zero) noexcept {
    note_refused(n, align, zero);
    return fail(ENOMEM);
}

inline void* refuse_realloc(void* p, std::size_t n) noexcept {
    note_refused_realloc(p, n);
    return fail(ENOMEM);
}

// The slow paths are out of line, so that malloc and free reach them by a tail call and the fast
// paths need no stack frame (measured: 6 instructions of a malloc+free pair).
[[gnu::noinline]] inline void* allocate_or_fail(std::size_t n, std::size_t align, bool zero) noexcept {
    if (n > PTRDIFF_MAX) return refuse(n, align, zero);
    void* p = preload::allocate(n, align, zero);
    return p ? p : fail(ENOMEM);
}

inline void* malloc(std::size_t n) noexcept {
    if (void* p = fast_allocate(n)) [[likely]] return p;
    return allocate_or_fail(n, kMinAlign, false);
}

[[gnu::noinline]] inline void free_slow(void* p) noexcept {
    if (!p) return;
    int saved = errno;
    preload::deallocate(p);
    errno = saved;
}

inline void free(void* p) noexcept {
    if (fast_deallocate(p)) [[likely]] return;
    free_slow(p);
}

inline void* calloc(std::size_t count, std::size_t size) noexcept {
    std::size_t n;
    if (__builtin_mul_overflow(count, size, &n)) return refuse(SIZE_MAX, kMinAlign, true);
    if (void* p = fast_allocate(n)) [[likely]] return std::memset(p, 0, n);
    return allocate_or_fail(n, kMinAlign, true);
}

inline void* realloc(void* p, std::size_t n) noexcept {
    if (!p) {
        ReallocOfNull as_realloc;  // served as malloc(n), logged and counted as realloc
        return malloc(n);
    }
    if (n == 0) {
        free(p);
        return nullptr;
    }
    if (n > PTRDIFF_MAX) return refuse_realloc(p, n);
    if (fast_fits_in_place(p, n)) return p;
    void* q = preload::reallocate(p, n);
    return q ? q : fail(ENOMEM);
}

inline void* reallocarray(void* p, std::size_t count, std::size_t size) noexcept {
    std::size_t n;
    if (__builtin_mul_overflow(count, size, &n)) return p ? refuse_realloc(p, SIZE_MAX) : refuse(SIZE_MAX, kMinAlign, false);
    return realloc(p, n);
}

inline void* memalign(std::size_t align, std::size_t n) noexcept {
    if (!is_pow2(align)) {
        if (align > SIZE_MAX / 2 + 1) return fail(EINVAL);
        align = std::bit_ceil(align);
    }
    if (align <= kMinAlign) return malloc(n);
    return allocate_or_fail(n, align, false);
}

inline int posix_memalign(void** out, std::size_t align, std::size_t n) noexcept {
    if (align % sizeof(void*) != 0 || !is_pow2(align)) return EINVAL;
    int saved = errno;
    void* p = memalign(align, n);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

inline std::size_t page_size() noexcept { return static_cast<std::size_t>(getpagesize()); }

inline void* valloc(std::size_t n) noexcept { return memalign(page_size(), n); }

inline void* pvalloc(std::size_t n) noexcept {
    std::size_t page = page_size();
    if (n > PTRDIFF_MAX) return refuse(n, page, false);
    return memalign(page, n ? align_up(n, page) : page);
}

inline std::size_t usable_size(void* p) noexcept { return p ? preload::usable_size(p) : 0; }

}  // namespace chainalloc::preload::api
