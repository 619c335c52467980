#include "jemalloc_arenas.hpp"

#include "chainalloc/allocator.hpp"
#include "chainalloc/os_pages.hpp"
#include "chainalloc/page_heap.hpp"
#include "chainalloc/spin_lock.hpp"

#include <atomic>
#include <cstdio>

#include <sys/mman.h>
#include <unistd.h>

// jemalloc's extent hook table (jemalloc/jemalloc.h, 5.x), declared here with the control
// interface: that header's malloc declarations are not wanted next to our own.
extern "C" {
struct extent_hooks_s;
using extent_hooks_t = extent_hooks_s;
struct extent_hooks_s {
    void* (*alloc)(extent_hooks_t*, void*, std::size_t, std::size_t, bool*, bool*, unsigned);
    bool (*dalloc)(extent_hooks_t*, void*, std::size_t, bool, unsigned);
    void (*destroy)(extent_hooks_t*, void*, std::size_t, bool, unsigned);
    bool (*commit)(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, unsigned);
    bool (*decommit)(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, unsigned);
    bool (*purge_lazy)(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, unsigned);
    bool (*purge_forced)(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, unsigned);
    bool (*split)(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, bool, unsigned);
    bool (*merge)(extent_hooks_t*, void*, std::size_t, void*, std::size_t, bool, unsigned);
};
int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen);
}

namespace chainalloc::preload::jemalloc_arenas {
namespace {

constexpr unsigned kMaxArenas = 8;
// Chunks are mapped as the arenas grow (no reservation up front: a process that lowers
// RLIMIT_AS later can still map), segment-aligned, and marked in a map of their own, so
// `owns` is one load for any pointer, as for the free-list layers' segments.
constexpr std::size_t kChunk = 4 * kSegmentSize;

constinit SegmentMap g_chunks{};
SpinLock g_bump_lock;  // guards the two words below; never held across mmap
std::uintptr_t g_next = 0, g_end = 0;
unsigned g_arenas[kMaxArenas];
unsigned g_count = 0;
std::atomic<unsigned> g_round_robin{0};
__thread int t_flags __attribute__((tls_model("initial-exec")));  // 0 = not chosen yet

// Takes size bytes at alignment from the current chunk; 0 if they don't fit. Lock held.
std::uintptr_t bump(std::size_t size, std::size_t alignment) noexcept {
    std::uintptr_t start = align_up(g_next, alignment);
    if (!g_next || start + size > g_end || start + size < start) return 0;
    g_next = start + size;
    return start;
}

// Extents come from the current chunk by bumping, or from a new chunk. `new_addr` (grow in
// place) is honoured only when it is the current end. Chunks are mapped writable, so every
// extent is committed and zero.
void* hook_alloc(extent_hooks_t*, void* new_addr, std::size_t size, std::size_t alignment, bool* zero,
                 bool* commit, unsigned) noexcept {
    if (alignment < kSliceSize) alignment = kSliceSize;  // keeps chunk starts segment-aligned below
    std::uintptr_t start;
    {
        LockGuard guard(g_bump_lock);
        start = new_addr ? (reinterpret_cast<std::uintptr_t>(new_addr) == g_next ? bump(size, 1) : 0)
                         : bump(size, alignment);
    }
    if (!start && new_addr) return nullptr;
    if (!start) {
        std::size_t chunk = align_up(size, kSegmentSize);
        if (chunk < kChunk) chunk = kChunk;
        if (chunk < size) return nullptr;
        void* fresh = os_pages::map_aligned(chunk, alignment > kSegmentSize ? alignment : kSegmentSize);
        if (!fresh) return nullptr;
        auto base = reinterpret_cast<std::uintptr_t>(fresh);
        g_chunks.add(base, chunk);
        LockGuard guard(g_bump_lock);
        // The rest of the old chunk is left unused: jemalloc asks for extents of a few MiB at
        // most, so a chunk loses little.
        g_next = base + size;
        g_end = base + chunk;
        start = base;
    }
    *zero = true;  // never used before: fresh zero pages
    *commit = true;
    return reinterpret_cast<void*>(start);
}

// true = "not done": jemalloc keeps the extent (and reuses it), which keeps it in our chunks.
bool hook_dalloc(extent_hooks_t*, void*, std::size_t, bool, unsigned) noexcept { return true; }
void hook_destroy(extent_hooks_t*, void* addr, std::size_t size, bool, unsigned) noexcept {
    madvise(addr, size, MADV_DONTNEED);
}
bool hook_commit(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, unsigned) noexcept {
    return false;  // already writable
}
bool hook_decommit(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, unsigned) noexcept {
    return true;  // opt out: pages stay writable (purging gives the memory back instead)
}
bool hook_purge_lazy(extent_hooks_t*, void* addr, std::size_t, std::size_t offset, std::size_t length,
                     unsigned) noexcept {
    return madvise(static_cast<char*>(addr) + offset, length, MADV_FREE) != 0;
}
bool hook_purge_forced(extent_hooks_t*, void* addr, std::size_t, std::size_t offset, std::size_t length,
                       unsigned) noexcept {
    return madvise(static_cast<char*>(addr) + offset, length, MADV_DONTNEED) != 0;
}
// Splitting and merging extents of our chunks need no work from us.
bool hook_split(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, bool, unsigned) noexcept {
    return false;
}
bool hook_merge(extent_hooks_t*, void*, std::size_t, void*, std::size_t, bool, unsigned) noexcept {
    return false;
}

extent_hooks_t g_hooks = {hook_alloc,    hook_dalloc,     hook_destroy,      hook_commit, hook_decommit,
                          hook_purge_lazy, hook_purge_forced, hook_split, hook_merge};

}  // namespace

bool init() noexcept {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cpus > 0 ? static_cast<unsigned>(2 * cpus) : 2;
    if (want > kMaxArenas) want = kMaxArenas;
    extent_hooks_t* hooks = &g_hooks;
    // jemalloc itself falls back to its automatic arenas where an explicit one can't be used
    // (a thread whose jemalloc state is already torn down, allocating in a late TLS
    // destructor): those carve from the chunks too. Uninitialised ones are created with our
    // hooks; the "huge" arena refuses (EFAULT) and is never chosen for explicit-arena calls.
    unsigned automatic = 0;
    std::size_t len = sizeof automatic;
    if (mallctl("arenas.narenas", &automatic, &len, nullptr, 0) == 0) {
        for (unsigned i = 0; i < automatic; ++i) {
            char name[48];
            std::snprintf(name, sizeof name, "arena.%u.extent_hooks", i);
            mallctl(name, nullptr, nullptr, &hooks, sizeof hooks);
        }
    }
    for (unsigned i = 0; i < want; ++i) {
        unsigned index = 0;
        std::size_t len = sizeof index;
        if (mallctl("arenas.create", &index, &len, &hooks, sizeof hooks) != 0) break;
        g_arenas[g_count++] = index;
    }
    return g_count > 0;
}

// Threads spread over the arenas round-robin, chosen at a thread's first jemalloc request.
int arena_flags() noexcept {
    if (!t_flags) [[unlikely]] {
        unsigned arena = g_arenas[g_round_robin.fetch_add(1, std::memory_order_relaxed) % g_count];
        t_flags = static_cast<int>((arena + 1) << 20);  // MALLOCX_ARENA(arena)
    }
    return t_flags;
}

bool owns(const void* p) noexcept { return g_chunks.contains(p); }

}  // namespace chainalloc::preload::jemalloc_arenas
