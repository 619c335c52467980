// The preload's runtime: the chain built from the CHAINALLOC_* variables, the per-thread state,
// and the fast paths that the exported functions inline.
//
// Shape of a request. malloc first tries the fast path: when the chain starts with a cached
// freelist (the default chain, and every preset but trace and system), the calling thread's
// cache for the size's class hands out a block — no lock, no atomic, no indirect call. Anything
// else (a miss that needs a refill from the central lists, a size no class holds, a chain that
// starts with a proxy, statistics on, a thread's first call) takes the slow path in
// runtime.cpp, which walks g_rt.chain: the library's LayerChain, whose layers are library
// blocks behind their function tables (chain_assembly.cpp).
//
// Who owns a pointer: a freelist layer owns the segments its page heap mapped; the bootstrap
// arena owns its static buffer; a jemalloc terminal owns the chunks its arenas map
// (jemalloc_arenas.hpp); everything else is glibc's — the terminal itself for `system`, and
// for `null` and foreign pointers under jemalloc, glibc through the kForeign pseudo-layer.
// Every test is address arithmetic, so free() never reads memory it did not make.
#pragma once

#include "bootstrap_arena.hpp"
#include "chainalloc/cached_segregated.hpp"
#include "chainalloc/counting.hpp"
#include "chainalloc/layer_chain.hpp"
#include "config/chain_spec.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace chainalloc::preload {

using Central = Segregated<SpinLock>;
using Cache = ThreadCache<Central>;
using config::LayerKind;

/// Freelist layers that get per-thread caches; each costs 1 KiB of TLS in every thread.
inline constexpr unsigned kCachedLayers = 4;

/// Counters for CHAINALLOC_STATS (only touched when it is on): the library's counting block.
using LayerStats = Counting<counts::preload, std::atomic<std::int64_t>>;


// Per-thread state, initial-exec TLS (no allocation, no __tls_get_addr on access). All-zero is
// the state of a thread that has not called us yet.
enum class ThreadMode : std::uint8_t {
    unregistered,  // no exit hook yet: the next slow-path call registers it
    active,        // caches in use; flushed by the exit hook
    exiting,       // exit hook ran: caches bypassed, blocks go straight to the central lists
    logging,       // inside the event log (LoggerScope): see below
};

/// Frees of the chain's blocks that arrive while the thread runs the event log (runtime.cpp).
inline constexpr unsigned kDeferredFrees = 8;

struct ThreadState {
    ThreadMode mode;
    bool in_init;              // this thread is initialising the runtime: recursion goes to bootstrap
    std::uint8_t in_glibc;     // depth of this thread's calls into glibc's malloc (GlibcLayer)
    std::uint8_t deferred;     // how many of deferred_frees are waiting
    void* deferred_frees[kDeferredFrees];
};

// One thread-local object, not two: in a shared object each initial-exec variable costs the
// fast path a load of its offset from the GOT.
struct ThreadLocal {
    ThreadState state;
    Cache caches[kCachedLayers];
};

extern __thread ThreadLocal t_local __attribute__((tls_model("initial-exec")));

/// Where a freelist layer's thread caches live (CachedSegregated's Caches policy): slot `slot`
/// of t_local.caches, all in one TLS object, so the fast path reads one TLS base. None while
/// the thread is not active (not yet registered, exiting, or inside the event log) or for a
/// layer without a slot (cache=0, or past kCachedLayers).
struct PreloadCaches {
    int slot = -1;
    Cache* get() const noexcept {
        return slot >= 0 && t_local.state.mode == ThreadMode::active ? &t_local.caches[slot] : nullptr;
    }
};

/// A freelist layer: the library's block, as it is.
using FreelistLayer = CachedSegregated<PreloadCaches>;

struct Layer {
    LayerKind kind = LayerKind::system;
    FreelistLayer* freelist = nullptr;  // for kind == freelist
};

/// The owner of a pointer no layer made under a jemalloc terminal (from __libc_malloc, or a
/// library bound to glibc): a pseudo-layer past the chain whose kind is `system`.
inline constexpr unsigned kForeign = config::kMaxLayers;

struct Runtime {
    // The fast path's layer: layer 0 when it is a cached freelist and stats are off.
    FreelistLayer* fast = nullptr;
    // A freelist right behind the proxies at the chain's front (`proxy > freelist > ...`), with
    // the conditions of `fast`: the slow path serves from its cache (or the block itself), then
    // lets each proxy see the request, where the chain walk would pass through each proxy's
    // and the freelist's function tables.
    FreelistLayer* behind_proxies = nullptr;
    unsigned behind_proxies_at = 0;  // its index: the number of proxies in front of it
    unsigned count = 0;
    bool stats = false;
    Layer layers[config::kMaxLayers + 1];            // + kForeign
    LayerChain<config::kMaxLayers> chain;            // the layers as blocks (none() == kForeign)
    Erased foreign;                                  // who takes what no layer owns: glibc
    LayerStats layer_stats[config::kMaxLayers + 1];
    config::ChainSpec spec;
};

extern Runtime g_rt;
extern BootstrapArena g_bootstrap;  // apart from g_rt: all zero, so it stays in .bss

/// True while the calling thread runs the event log's code (spdlog, fmt, libc).
inline bool in_logger() noexcept { return t_local.state.mode == ThreadMode::logging; }

/// True while the calling thread may be inside glibc's malloc: in the event log (whose
/// allocations are glibc's) or in a layer's call into it. A child forked from a signal handler
/// that interrupted such a thread finds glibc's heap maybe halfway through a change (glibc
/// takes no lock in a single-threaded process), so it must not use that heap: it does not log.
inline bool in_glibc_heap() noexcept { return in_logger() || t_local.state.in_glibc; }

/// The event log's own work. What it allocates meanwhile is the tool's, not the program's: it
/// is served by glibc directly, never by the chain, so it is never logged (no recursion), never
/// counted against a cap, and never refused by a `null` terminal. The mode is not `active`, so
/// the fast path steps aside at no extra cost.
class LoggerScope {
public:
    LoggerScope() noexcept : saved_(t_local.state.mode) { t_local.state.mode = ThreadMode::logging; }
    ~LoggerScope() { t_local.state.mode = saved_; }
    LoggerScope(const LoggerScope&) = delete;
    LoggerScope& operator=(const LoggerScope&) = delete;

private:
    ThreadMode saved_;
};

/// A block from the calling thread's cache of freelist layer `fl` (whose cache is slot 0), or
/// nullptr for the slow path (which also refills an empty bin). Always inlined, as is
/// cache_deallocate: a call here would cost the entry point a stack frame (measured: +11
/// instructions a malloc+free pair when GCC stopped inlining it after the bins gained a
/// low-water mark).
[[gnu::always_inline]] inline void* cache_allocate(FreelistLayer* fl, std::size_t n) noexcept {
    if (fl && t_local.state.mode == ThreadMode::active) [[likely]] {
        int c = fl->central().classes().class_of(n);
        if (c != SizeClasses::kNone) [[likely]]
            return t_local.caches[0].try_allocate(c);
    }
    return nullptr;
}

/// Takes p back into the calling thread's cache of `fl` if fl owns it and all looks sound.
[[gnu::always_inline]] inline bool cache_deallocate(FreelistLayer* fl, void* p) noexcept {
    if (fl && t_local.state.mode == ThreadMode::active) [[likely]] {
        // A pointer that starts no block, a block marked free or a full bin: the slow path,
        // which reports misuse (this path makes no call, so it needs no stack frame).
        Slice* slice = fl->central().slice_of(p);
        if (slice && slice->is_block_start(p)) [[likely]]
            return t_local.caches[0].try_deallocate(slice->cls, p, fl->limit(slice->cls));
    }
    return false;
}

/// The fast path: the first layer's cache, when the chain starts with a cached freelist.
[[gnu::always_inline]] inline void* fast_allocate(std::size_t n) noexcept { return cache_allocate(g_rt.fast, n); }
[[gnu::always_inline]] inline bool fast_deallocate(void* p) noexcept { return cache_deallocate(g_rt.fast, p); }

/// The fast layer's block keeps its place when the new size falls in the same class.
inline bool fast_fits_in_place(void* p, std::size_t n) noexcept {
    FreelistLayer* fl = g_rt.fast;
    if (!fl) return false;
    Slice* slice = fl->central().slice_of(p);
    if (!slice || !slice->is_block_start(p)) return false;  // the slow path reports misuse
    int c = fl->central().classes().class_of(n);
    return c != SizeClasses::kNone && static_cast<std::size_t>(c) == slice->cls;
}

// Inside the preload: start-up (startup.cpp), the thread life cycle (thread_life.cpp), chain
// assembly (chain_assembly.cpp) and the chain walk that proxies serve through (runtime.cpp).
bool ensure_ready() noexcept;  // false: serve this call from the bootstrap arena
void register_thread() noexcept;
void thread_life_init() noexcept;
bool build_freelist(const config::FreeListSpec& spec, unsigned index, unsigned& cached) noexcept;
void assemble_chain() noexcept;
/// Serves from layer `from` on; `served_by` names the layer that made the block. `observed` =
/// false passes the proxies by (realloc logs its own single event).
void* serve(unsigned from, std::size_t n, std::size_t align, bool zero, unsigned& served_by,
            bool observed = true) noexcept;

// The slow paths (runtime.cpp). align is a power of two >= 16; n <= PTRDIFF_MAX.
void* allocate(std::size_t n, std::size_t align, bool zero) noexcept;
void deallocate(void* p) noexcept;
void* reallocate(void* p, std::size_t n) noexcept;  // p != nullptr, n > 0
std::size_t usable_size(const void* p) noexcept;    // p != nullptr

// Requests refused before reaching any layer (sizes past PTRDIFF_MAX, count*size overflow):
// the proxies still see them, as failures.
void note_refused(std::size_t n, std::size_t align, bool zero) noexcept;
void note_refused_realloc(void* p, std::size_t n) noexcept;

// Statistics report at exit, and the configuration at start with CHAINALLOC_VERBOSE (stats.cpp).
void print_stats() noexcept;

/// malloc_trim: the calling thread's caches and every freelist layer's free memory go back to
/// the system at once, then glibc trims its own heap. 1 if anything could be given back.
int trim(std::size_t pad) noexcept;
void print_configuration() noexcept;

}  // namespace chainalloc::preload
