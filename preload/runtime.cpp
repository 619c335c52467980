// The slow paths: a request walks the chain (g_rt.chain, a LayerChain of library blocks; see
// chain_assembly.cpp), a pointer goes back to the layer that owns it. What is done here is what
// only a malloc replacement needs: statistics, who takes a pointer no layer owns (glibc), the
// check that such a pointer is glibc's, glibc's realloc contract around the chain's, and frees
// that arrive from the loader while the log runs. Start-up is startup.cpp, the thread life
// cycle thread_life.cpp, fork fork.cpp.
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

// Whether `owner` is a layer of ours with its own memory (a freelist, jemalloc's arenas), not
// glibc (the `system` and `null` terminals' pointers, kForeign).
bool chain_owned(unsigned owner) noexcept {
    LayerKind kind = g_rt.layers[owner].kind;
    return owner != kForeign && (kind == LayerKind::freelist || kind == LayerKind::jemalloc);
}

// A pointer on its way to glibc must look like a block of glibc's: a stack or global address
// stops here, with our message (foreign_pointer).
void check_glibc_block(const char* call, unsigned owner, const void* p) noexcept {
    if (chain_owned(owner)) return;
    if (const char* why = not_from_glibc(p)) [[unlikely]]
        abort_on_foreign(call, p, why);
}

// Gives p back to layer `owner`, which made it (or, for the terminal, is its default owner).
void release(unsigned owner, void* p) noexcept {
    if (g_rt.stats && !in_logger()) count_freed(owner, p, size_in_layer(owner, p));
    if (FreelistLayer* fl = g_rt.layers[owner].freelist) return fl->deallocate({p, 0});  // typed: no table
    const Erased& layer = layer_at(owner);
    layer.ops->deallocate(layer.self, p);
}

// Frees of the chain's blocks while this thread runs the event log. The log's own blocks are
// glibc's (LoggerScope), so such a free is not the log's: it is the loader's. The log touches
// thread-locals of libraries loaded after start (spdlog, libunwind, libstdc++): the first touch
// after a dlopen or dlclose elsewhere goes through __tls_get_addr, which updates this thread's
// TLS vector and frees the blocks of unloaded modules (_dl_update_slotinfo), possibly the very
// block whose free is being logged, before the loader's outer call has cleared its entry. So
// they wait until the request that ran the log is done: one that is the block being freed is
// that free (dropped), the others are freed then, and logged as the frees they are. The same
// holds for a realloc there (the loader growing its vector): the old block waits too, so the
// loader's outer call never writes into memory that is already reused.
bool defer_free(void* p) noexcept {
    ThreadState& t = t_local.state;
    if (t.deferred == kDeferredFrees) return false;  // full: freed now, the old way
    t.deferred_frees[t.deferred++] = p;
    return true;
}

// After a request that ran the log: the frees that waited, but `done` (the block just freed).
[[gnu::noinline]] void drain_deferred(const void* done) noexcept {
    ThreadState& t = t_local.state;
    while (t.deferred) {
        void* p = t.deferred_frees[--t.deferred];
        if (p != done) deallocate(p);
    }
}

inline void after_request(const void* done) noexcept {
    if (t_local.state.deferred && !in_logger()) [[unlikely]]
        drain_deferred(done);
}

// `proxy > freelist > ...` (g_rt.behind_proxies): the freelist serves first, from the thread's
// cache as the fast path would, else as the block it is; then each proxy sees the block,
// innermost first, as the proxies' walk through the chain would have it. Null when the
// freelist does not serve (a size past its classes): the caller walks the whole chain, which
// asks the freelist again and goes on past it.
void* allocate_behind_proxies(FreelistLayer& fl, std::size_t n, std::size_t align, bool zero) noexcept {
    void* p = align <= kMinAlign ? cache_allocate(&fl, n) : nullptr;
    if (p && zero) std::memset(p, 0, n);
    if (!p) {
        Block b = zero ? allocate_zeroed(fl, n, align) : fl.allocate(n, align);
        if (!b) return nullptr;
        p = b.ptr;
    }
    unsigned at = g_rt.behind_proxies_at;
    for (unsigned i = at; i-- > 0;) proxy_on_allocate(i, n, align, zero, p, at);
    after_request(nullptr);
    return p;
}

// The free of a block of that freelist, seen by the proxies first (a block is logged free
// before anyone can have it again). False: not the freelist's block, or not while the thread
// is active (exiting, in the log): the general path.
bool deallocate_behind_proxies(FreelistLayer& fl, void* p) noexcept {
    if (t_local.state.mode != ThreadMode::active || !fl.owns(p)) return false;
    proxy_on_free(g_rt.behind_proxies_at, p);
    if (!cache_deallocate(&fl, p)) fl.deallocate({p, 0});  // which reports misuse
    after_request(p);
    return true;
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
    if (FreelistLayer* fl = g_rt.behind_proxies)
        if (void* p = allocate_behind_proxies(*fl, n, align, zero)) return p;
    unsigned served_by = 0;
    void* p = serve(0, n, align, zero, served_by);
    after_request(nullptr);
    return p;
}

void deallocate(void* p) noexcept {
    if (!p || g_bootstrap.owns(p)) return;  // bootstrap blocks are never reused
    if (!ensure_ready()) return;  // only bootstrap blocks exist before the chain is ready
    if (FreelistLayer* fl = g_rt.behind_proxies)
        if (deallocate_behind_proxies(*fl, p)) return;
    unsigned owner = owner_of(p);
    if (in_logger() && chain_owned(owner) && defer_free(p)) return;  // see defer_free
    check_glibc_block("free", owner, p);
    proxy_on_free(owner, p);
    release(owner, p);
    after_request(p);
}

void* reallocate(void* p, std::size_t n) noexcept {
    if (g_bootstrap.owns(p)) {
        void* q = allocate(n, kMinAlign, false);
        if (q) std::memcpy(q, p, std::min(n, BootstrapArena::size_of(p)));
        return q;
    }
    if (!ensure_ready()) return nullptr;
    unsigned owner = owner_of(p);
    if (in_logger() && chain_owned(owner)) {  // the loader's, inside the log: see defer_free
        std::size_t old_size = size_in_layer(owner, p);
        void* q = system_allocate(n, kMinAlign, false);
        if (!q) return nullptr;
        std::memcpy(q, p, std::min(n, old_size));
        if (!defer_free(p)) release(owner, p);
        return q;
    }
    check_glibc_block("realloc", owner, p);
    auto resized = g_rt.stats ? g_rt.chain.reallocate(layer_at(owner), owner, p, n, StatsObserver{})
                              : g_rt.chain.reallocate(layer_at(owner), owner, p, n);
    void* q = resized.block.ptr;
    unsigned served_by = resized.by;
    proxy_on_realloc(owner, p, n, q, served_by);
    after_request(q == p ? nullptr : p);
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
