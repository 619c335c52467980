// The jemalloc plugin (libchainalloc-jemalloc.so, see jemalloc_plugin.hpp): jemalloc through its
// *allocx API, from arenas of our own (jemalloc_arenas.cpp), behind one entry point.
#include "jemalloc_plugin.hpp"

#include "chainalloc/jemalloc.hpp"
#include "jemalloc_arenas.hpp"

#include <cstring>

namespace chainalloc::preload::jemalloc_backend {
namespace {

const JemallocHost* g_host = nullptr;

/// From the calling thread's arena. In one state jemalloc ignores the arena it is asked for: a
/// thread whose jemalloc state was already torn down, allocating in a late TLS destructor,
/// gets a block of arena 0, which may come from before our hooks (outside our chunks). Such a
/// block is given back and the request served by glibc, so "in our chunks" keeps meaning
/// "jemalloc's" and everything else stays glibc's.
void* allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    int flags = Jemalloc::align_flag(align) | (zero ? Jemalloc::kZero : 0) | jemalloc_arenas::arena_flags();
    void* p = mallocx(n ? n : 1, flags);
    if (!p || jemalloc_arenas::owns(p)) [[likely]] return p;
    dallocx(p, 0);
    return g_host->system_allocate(n, align, zero);
}

/// In place when jemalloc can (xallocx); otherwise a new block, a copy, then the free, in
/// that order, so a failure leaves p untouched as realloc must. Not rallocx: its result may lie
/// outside our chunks (above), and by the time that shows, rallocx has freed p, so a failed
/// move to glibc would lose the caller's data.
void* reallocate(void* p, std::size_t n) noexcept {
    // In place only when the block ends up in n's own size class: xallocx that cannot shrink
    // returns the old size, and a 1 MiB block cut to 16 bytes should not keep its megabyte.
    int flags = Jemalloc::align_flag(kMinAlign);
    if (xallocx(p, n, 0, flags) == nallocx(n, flags)) return p;
    void* q = allocate(n, kMinAlign, false);
    if (!q) return nullptr;
    std::size_t old = Jemalloc::usable_size(p);
    std::memcpy(q, p, n < old ? n : old);
    dallocx(p, 0);
    return q;
}

void deallocate(void* p) noexcept { dallocx(p, 0); }
std::size_t usable_size(const void* p) noexcept { return Jemalloc::usable_size(p); }

}  // namespace
}  // namespace chainalloc::preload::jemalloc_backend

extern "C" __attribute__((visibility("default"))) const chainalloc::preload::JemallocPlugin* chainalloc_jemalloc_plugin(
    const chainalloc::preload::JemallocHost* host) {
    namespace pre = chainalloc::preload;
    namespace je = pre::jemalloc_backend;
    static const pre::JemallocPlugin plugin = {pre::jemalloc_arenas::init, pre::jemalloc_arenas::owns, je::allocate,
                                               je::reallocate, je::deallocate, je::usable_size};
    je::g_host = host;
    return &plugin;
}
