// System: glibc's malloc, reached through its __libc_* entry points, so that it stays glibc's
// even inside a process where `malloc` itself is interposed (by our preload or anyone else).
#pragma once

#include "allocator.hpp"

#include <atomic>
#include <cstring>

#include <dlfcn.h>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
int __libc_mallopt(int, int);
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

namespace chainalloc::libc {

using UsableSizeFn = std::size_t (*)(void*);

// glibc's malloc_usable_size, for System::usable_size.
//
// Invariant: nothing here allocates or takes a lock, ever, so System is safe inside malloc
// (the preload's). The pointer is a constant-initialised global (constinit: no guard variable,
// no initialisation on first use), set by whoever starts the process's use of System:
// find_usable_size() looks it up in libc.so.6 itself with dlopen/dlsym, which allocate (glibc's
// dlerror state is malloc'd), so it is called outside malloc (at start-up; the preload does it
// in its initialisation, where recursion is served by its bootstrap arena, and may hand in its
// own lookup with set_usable_size). Not RTLD_NEXT or the linked `malloc_usable_size`: either may
// be another allocator's (jemalloc linked into the program exports one, as does the preload).
#ifdef CHAINALLOC_SANITIZED
inline constinit std::atomic<UsableSizeFn> usable_size_fn{&::malloc_usable_size};
#else
inline constinit std::atomic<UsableSizeFn> usable_size_fn{nullptr};
#endif

inline void set_usable_size(UsableSizeFn f) noexcept { usable_size_fn.store(f, std::memory_order_relaxed); }

/// Looks glibc's malloc_usable_size up (allocates: never from inside malloc). True if found.
inline bool find_usable_size() noexcept {
#ifdef CHAINALLOC_SANITIZED
    return true;  // a sanitizer's malloc: the public name is the one that matches its blocks
#else
    if (usable_size_fn.load(std::memory_order_relaxed)) return true;
    void* lib = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!lib) return false;
    auto f = reinterpret_cast<UsableSizeFn>(dlsym(lib, "malloc_usable_size"));
    dlclose(lib);  // drops the reference NOLOAD took; libc stays
    if (f) set_usable_size(f);
    return f != nullptr;
#endif
}

/// Sets glibc's malloc up now, on the calling thread; for a malloc replacement's start-up,
/// while the process has one thread.
///
/// Why: glibc initialises its malloc on first use without a lock, trusting that the first
/// malloc of a process runs before any thread exists, and makes the initialising thread the
/// owner of main_arena. Behind a replacement, glibc's first call is whatever first falls
/// through to it, often from several threads at once: each took main_arena as its own, and the
/// second to exit aborted in __malloc_arena_thread_freeres ("a->attached_threads > 0").
/// mallopt initialises and then ignores a parameter number it does not know (0); it allocates
/// nothing.
inline void initialise_glibc_malloc() noexcept {
#ifndef CHAINALLOC_SANITIZED
    __libc_mallopt(0, 0);
#endif
}

}  // namespace chainalloc::libc

namespace chainalloc {

struct System {
    static constexpr std::size_t alignment = kMinAlign;

    // A zero-byte request asks for one byte: the same block under glibc, and a block whose
    // reported usable size is really writable under a sanitizer's malloc.
    Block allocate(std::size_t n, std::size_t align = kMinAlign) noexcept {
        std::size_t ask = n ? n : 1;
        void* p = align <= kMinAlign ? libc::malloc(ask) : libc::memalign(align, ask);
        return p ? Block{p, usable_or(p, n)} : Block{};
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
        b = {p, usable_or(p, n)};
        return true;
    }

    /// calloc, which skips the clearing for fresh (mmapped) memory; memalign and a memset for
    /// a larger alignment, which glibc has no zeroing call for.
    Block allocate_zeroed(std::size_t n, std::size_t align = kMinAlign) noexcept {
        if (align > kMinAlign) {
            Block b = allocate(n, align);
            if (b) std::memset(b.ptr, 0, b.size);
            return b;
        }
        void* p = libc::calloc(1, n ? n : 1);
        return p ? Block{p, usable_or(p, n)} : Block{};
    }

    /// glibc's malloc_usable_size (see libc::usable_size_fn); 0, "nothing known", until the
    /// process has found or handed in glibc's function.
    std::size_t usable_size(const void* p) const noexcept {
        libc::UsableSizeFn fn = libc::usable_size_fn.load(std::memory_order_relaxed);
        return fn ? fn(const_cast<void*>(p)) : 0;
    }

    /// Finds glibc's malloc_usable_size (libc::find_usable_size: allocates, so not from inside
    /// malloc); until then blocks report the size asked for.
    static bool find_libc_usable_size() noexcept { return libc::find_usable_size(); }
    /// Hands in glibc's malloc_usable_size, found by the caller (the preload, at init).
    static void set_libc_usable_size(libc::UsableSizeFn f) noexcept { libc::set_usable_size(f); }

private:
    // The usable size, at least the request (what a block reports while glibc's function is
    // not known yet).
    std::size_t usable_or(void* p, std::size_t requested) const noexcept {
        return std::max(usable_size(p), requested);
    }
};

}  // namespace chainalloc
