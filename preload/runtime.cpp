// The slow paths: a request walks the chain (g_rt.chain, a LayerChain of library blocks; see
// chain_assembly.cpp), a pointer goes back to the layer that owns it. What is done here is what
// only a malloc replacement needs: statistics, who takes a pointer no layer owns (glibc), the
// check that such a pointer is glibc's, and realloc's rules across layers. Start-up is
// startup.cpp, the thread life cycle thread_life.cpp, fork fork.cpp.
#include "runtime.hpp"

#include "backends.hpp"
#include "foreign_pointer.hpp"
#include "proxy_events.hpp"

#include <algorithm>
#include <cstring>

#include <dlfcn.h>

namespace chainalloc::preload {

namespace {

const Erased& layer_at(unsigned i) noexcept { return i == kForeign ? g_rt.foreign : g_rt.chain[i]; }

std::size_t size_in_layer(unsigned i, const void* p) noexcept {
    const Erased& layer = layer_at(i);
    return layer.ops->usable_size ? layer.ops->usable_size(layer.self, p) : 0;
}

// Statistics are exact when on and cost one predictable branch when off. What counts is a
// block's usable size (what the layer hands out, not the request).
void count_served(unsigned i, void* p) noexcept { g_rt.layer_stats[i].on_allocate(0, 0, {p, size_in_layer(i, p)}); }
void count_freed(unsigned i, void* p, std::size_t usable) noexcept { g_rt.layer_stats[i].on_deallocate({p, usable}); }

// The layer that owns p: the first whose range holds it (freelists, jemalloc's arenas); else
// the `system` terminal, or glibc (kForeign) under the other terminals.
unsigned owner_of(const void* p) noexcept {
    unsigned i = g_rt.chain.owner_of(p);
    if (i != g_rt.chain.none()) return i;
    unsigned terminal = g_rt.count - 1;
    return g_rt.layers[terminal].kind == LayerKind::system ? terminal : kForeign;
}

struct StatsObserver {
    void on_served(unsigned i, Block b) noexcept { count_served(i, b.ptr); }
    void on_fell_through(unsigned i) noexcept {
        g_rt.layer_stats[i].on_allocate(0, 0, {});
        g_rt.layer_stats[i].on_fell_through();
    }
    void on_failed(unsigned i) noexcept { g_rt.layer_stats[i].on_allocate(0, 0, {}); }
    void on_freed(unsigned i, void* p, std::size_t usable) noexcept { count_freed(i, p, usable); }
};


// A pointer on its way to glibc (the `system` and `null` terminals, kForeign) must look like a
// block of glibc's: a stack or global address stops here, with our message (foreign_pointer).
void check_glibc_block(const char* call, unsigned owner, const void* p) noexcept {
    LayerKind kind = g_rt.layers[owner].kind;
    if (kind == LayerKind::freelist || kind == LayerKind::jemalloc) return;
    if (const char* why = not_from_glibc(p)) [[unlikely]]
        abort_on_foreign(call, p, why);
}

// Gives p back to layer `owner`, which made it (or, for the terminal, is its default owner).
void release(unsigned owner, void* p) noexcept {
    if (g_rt.stats && !in_logger()) count_freed(owner, p, size_in_layer(owner, p));
    const Erased& layer = layer_at(owner);
    layer.ops->deallocate(layer.self, p);
}

}  // namespace

void* serve(unsigned from, std::size_t n, std::size_t align, bool zero, unsigned& served_by,
            bool observed) noexcept {
    auto served = g_rt.stats ? g_rt.chain.allocate(from, n, align, zero, observed, StatsObserver{})
                             : g_rt.chain.allocate(from, n, align, zero, observed);
    served_by = served.by;
    return served.block.ptr;
}

void* allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    if (in_logger()) return system_allocate(n, align, zero);  // see LoggerScope
    if (!ensure_ready()) return g_bootstrap.allocate(n, align);  // .bss: already zero
    unsigned served_by = 0;
    return serve(0, n, align, zero, served_by);
}

void deallocate(void* p) noexcept {
    if (!p || g_bootstrap.owns(p)) return;  // bootstrap blocks are never reused
    if (!ensure_ready()) return;  // only bootstrap blocks exist before the chain is ready
    unsigned owner = owner_of(p);
    check_glibc_block("free", owner, p);
    proxy_on_free(owner, p);
    release(owner, p);
}

void* reallocate(void* p, std::size_t n) noexcept {
    if (g_bootstrap.owns(p)) {
        void* q = allocate(n, kMinAlign, false);
        if (q) std::memcpy(q, p, std::min(n, BootstrapArena::size_of(p)));
        return q;
    }
    if (!ensure_ready()) return nullptr;
    unsigned owner = owner_of(p);
    check_glibc_block("realloc", owner, p);
    auto resized = g_rt.stats ? g_rt.chain.reallocate(layer_at(owner), owner, p, n, StatsObserver{})
                              : g_rt.chain.reallocate(layer_at(owner), owner, p, n);
    void* q = resized.block.ptr;
    unsigned served_by = resized.by;
    proxy_on_realloc(owner, p, n, q, served_by);
    return q;
}

void note_refused(std::size_t n, std::size_t align, bool zero) noexcept {
    if (!ensure_ready() || in_logger()) return;
    for (unsigned i = 0; i < g_rt.count; ++i)
        if (g_rt.layers[i].kind == LayerKind::proxy) proxy_on_allocate(i, n, align, zero, nullptr, 0);
}

void note_refused_realloc(void* p, std::size_t n) noexcept {
    if (!ensure_ready() || g_bootstrap.owns(p)) return;
    proxy_on_realloc(owner_of(p), p, n, nullptr, g_rt.count);  // seen by every proxy in front of it
}

int trim(std::size_t pad) noexcept {
    if (!ensure_ready()) return 0;
    int released = g_rt.chain.trim();
    // glibc's own, past this object: found once (dlsym may allocate: no lock of ours is held).
    static int (*glibc_trim)(std::size_t) = nullptr;
    if (!glibc_trim) glibc_trim = reinterpret_cast<int (*)(std::size_t)>(dlsym(RTLD_NEXT, "malloc_trim"));
    if (glibc_trim) released |= glibc_trim(pad);
    return released;
}

std::size_t usable_size(const void* p) noexcept {
    if (g_bootstrap.owns(p)) return BootstrapArena::size_of(p);
    if (!ensure_ready()) return 0;
    return size_in_layer(owner_of(p), const_cast<void*>(p));
}

}  // namespace chainalloc::preload
