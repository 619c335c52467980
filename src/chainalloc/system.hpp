// System: glibc's malloc, reached through its __libc_* entry points, so that it stays glibc's
// even inside a process where `malloc` itself is interposed (by our preload or anyone else).
#pragma once

#include "allocator.hpp"

#include <dlfcn.h>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#include <cstdlib>
#include <malloc.h>
#define CHAINALLOC_SANITIZED 1
#endif

namespace chainalloc::libc {
#ifdef CHAINALLOC_SANITIZED
// A sanitizer owns malloc and intercepts only some __libc_* names (__libc_memalign, not
// __libc_free): in sanitized builds the public names keep every pair on the same heap.
inline void* malloc(std::size_t n) noexcept { return ::malloc(n); }
inline void* calloc(std::size_t c, std::size_t n) noexcept { return ::calloc(c, n); }
inline void* realloc(void* p, std::size_t n) noexcept { return ::realloc(p, n); }
inline void* memalign(std::size_t a, std::size_t n) noexcept { return ::memalign(a, n); }
inline void free(void* p) noexcept { ::free(p); }
#else
inline void* malloc(std::size_t n) noexcept { return __libc_malloc(n); }
inline void* calloc(std::size_t c, std::size_t n) noexcept { return __libc_calloc(c, n); }
inline void* realloc(void* p, std::size_t n) noexcept { return __libc_realloc(p, n); }
inline void* memalign(std::size_t a, std::size_t n) noexcept { return __libc_memalign(a, n); }
inline void free(void* p) noexcept { __libc_free(p); }
#endif
}  // namespace chainalloc::libc

namespace chainalloc {

struct System {
    static constexpr std::size_t alignment = kMinAlign;

    // A zero-byte request asks for one byte: the same block under glibc, and a block whose
    // reported usable size is really writable under a sanitizer's malloc.
    Block allocate(std::size_t n, std::size_t align = kMinAlign) noexcept {
        std::size_t ask = n ? n : 1;
        void* p = align <= kMinAlign ? libc::malloc(ask) : libc::memalign(align, ask);
        return p ? Block{p, usable_size(p, n)} : Block{};
    }

    void deallocate(Block b) noexcept { libc::free(b.ptr); }

    /// glibc's realloc: grows in place (or by mremap) where it can; only for blocks with the
    /// default alignment, since glibc's realloc does not keep a larger one.
    bool reallocate(Block& b, std::size_t n) noexcept {
        if (!b.ptr) {
            b = allocate(n);
            return static_cast<bool>(b);
        }
        if (n == 0) n = 1;  // glibc's realloc(p, 0) frees; keep a block instead
        void* p = libc::realloc(b.ptr, n);
        if (!p) return false;
        b = {p, usable_size(p, n)};
        return true;
    }

    Block zeroed(std::size_t n) noexcept {
        void* p = libc::calloc(1, n ? n : 1);
        return p ? Block{p, usable_size(p, n)} : Block{};
    }

    /// glibc's malloc_usable_size, looked up in libc.so.6 itself: not RTLD_NEXT, which may
    /// find another allocator's (jemalloc linked into the program, say). Looked up once; the
    /// lookup is the only call here that may allocate.
    /// `requested` is what the caller asked for, the answer if the lookup failed.
    static std::size_t usable_size(void* p, std::size_t requested) noexcept {
        using Fn = std::size_t (*)(void*);
        static Fn fn = lookup();
        return fn ? std::max(fn(p), requested) : requested;
    }

private:
    static std::size_t (*lookup() noexcept)(void*) {
#ifdef CHAINALLOC_SANITIZED
        return &::malloc_usable_size;
#endif
        void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        void* fn = libc ? dlsym(libc, "malloc_usable_size") : nullptr;
        return reinterpret_cast<std::size_t (*)(void*)>(fn);
    }
};

}  // namespace chainalloc
