#include "jemalloc_arenas.hpp"

#include "chainalloc/allocator.hpp"

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

std::uintptr_t g_base = 0;
std::size_t g_size = 0;
std::atomic<std::uintptr_t> g_next{0};  // bump: extents are never given back to the range
unsigned g_arenas[kMaxArenas];
unsigned g_count = 0;
std::atomic<unsigned> g_round_robin{0};
__thread int t_flags __attribute__((tls_model("initial-exec")));  // 0 = not chosen yet

// Extents come from the range by bumping; `new_addr` (grow in place) is honoured only when it
// is the current end. The pages are made writable here, so every extent is committed.
void* hook_alloc(extent_hooks_t*, void* new_addr, std::size_t size, std::size_t alignment, bool* zero,
                 bool* commit, unsigned) noexcept {
    std::uintptr_t cur = g_next.load(std::memory_order_relaxed);
    std::uintptr_t start;
    do {
        start = align_up(cur, alignment);
        if (new_addr && reinterpret_cast<std::uintptr_t>(new_addr) != start) return nullptr;
        if (start + size > g_base + g_size || start + size < start) return nullptr;
    } while (!g_next.compare_exchange_weak(cur, start + size, std::memory_order_relaxed));
    if (mprotect(reinterpret_cast<void*>(start), size, PROT_READ | PROT_WRITE) != 0) return nullptr;
    *zero = true;  // never used before: fresh zero pages
    *commit = true;
    return reinterpret_cast<void*>(start);
}

// true = "not done": jemalloc keeps the extent (and reuses it), which keeps it in the range.
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
// Splitting and merging extents of one contiguous range need no work from us.
bool hook_split(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, bool, unsigned) noexcept {
    return false;
}
bool hook_merge(extent_hooks_t*, void*, std::size_t, void*, std::size_t, bool, unsigned) noexcept {
    return false;
}

extent_hooks_t g_hooks = {hook_alloc,    hook_dalloc,     hook_destroy,      hook_commit, hook_decommit,
                          hook_purge_lazy, hook_purge_forced, hook_split, hook_merge};

bool reserve() noexcept {
    // 1 TiB of address space (PROT_NONE, no memory), less where the address space is limited.
    for (std::size_t size = std::size_t{1} << 40; size >= (std::size_t{1} << 34); size /= 2) {
        void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) continue;
        g_base = reinterpret_cast<std::uintptr_t>(p);
        g_size = size;
        g_next.store(g_base);
        return true;
    }
    return false;
}

}  // namespace

bool init() noexcept {
    if (!reserve()) return false;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cpus > 0 ? static_cast<unsigned>(2 * cpus) : 2;
    if (want > kMaxArenas) want = kMaxArenas;
    extent_hooks_t* hooks = &g_hooks;
    // jemalloc itself falls back to its automatic arenas where an explicit one can't be used
    // (a thread whose jemalloc state is already torn down, allocating in a late TLS
    // destructor): those carve from the range too. Uninitialised ones are created with our
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

bool owns(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p) - g_base < g_size; }

}  // namespace chainalloc::preload::jemalloc_arenas
