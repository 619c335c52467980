// Chain assembly: each layer of the spec becomes a library block, erased into g_rt.chain
// (chainalloc/layer_chain.hpp). A freelist is a CachedSegregated placed in static storage, glibc
// a System (GlibcLayer), `null` a Null, jemalloc the plugin's JemallocLayer, and a proxy the
// ProxyLayer below: an observer that serves through the rest of the chain, then logs.
#include "runtime.hpp"

#include "backends.hpp"
#include "chainalloc/null.hpp"
#include "proxy_events.hpp"

#include <new>

namespace chainalloc::preload {

namespace {

// Storage for the freelist layers, constructed in place by initialise() and never destroyed:
// blocks stay in use until the very end of the process (other libraries' destructors, threads
// still running during exit), so the ranges must outlive every static destructor.
alignas(FreelistLayer) unsigned char g_freelist_storage[config::kMaxLayers][sizeof(FreelistLayer)];

// The terminals' blocks. glibc also takes the pointers no layer owns (kForeign).
constinit GlibcLayer g_glibc;
constinit Null g_null;
constinit JemallocLayer g_jemalloc_layer;

// A proxy: serves through the rest of the chain, then logs what happened.
struct ProxyLayer {
    static constexpr bool kObserver = true;
    static constexpr std::size_t alignment = kMinAlign;
    unsigned index;

    Block allocate(std::size_t n, std::size_t align, bool zero, unsigned& by) noexcept {
        void* p = serve(index + 1, n, align, zero, by);
        proxy_on_allocate(index, n, align, zero, p, by);
        return p ? Block{p, n} : Block{};
    }
    Block allocate(std::size_t n, std::size_t align) noexcept {
        unsigned by = 0;
        return allocate(n, align, false, by);
    }
    void deallocate(Block) noexcept {}  // owns nothing: a free goes to the layer that owns it
};
ProxyLayer g_proxies[config::kMaxLayers];

}  // namespace

// The chain's blocks, once the layers' kinds are final (a jemalloc terminal may have become
// `system`).
void assemble_chain() noexcept {
    g_rt.foreign = Erased::of(g_glibc);
    for (unsigned i = 0; i < g_rt.count; ++i) {
        Layer& layer = g_rt.layers[i];
        Erased erased;
        switch (layer.kind) {
            case LayerKind::freelist: erased = Erased::of(*layer.freelist); break;
            case LayerKind::proxy:
                g_proxies[i].index = i;
                erased = Erased::of(g_proxies[i]);
                break;
            case LayerKind::system: erased = Erased::of(g_glibc); break;
            case LayerKind::jemalloc: erased = Erased::of(g_jemalloc_layer); break;
            case LayerKind::null: erased = Erased::of(g_null); break;
        }
        g_rt.chain.add(erased);
    }
}

bool build_freelist(const config::FreeListSpec& spec, unsigned index, unsigned& cached) noexcept {
    SizeClasses classes;
    if (!classes.assign({spec.classes, spec.class_count})) return false;
    auto* fl = new (g_freelist_storage[index]) FreelistLayer{};
    PreloadCaches caches{(spec.cache > 0 && cached < kCachedLayers) ? static_cast<int>(cached++) : -1};
    // A thread keeps at most `cache` blocks of a class and at most cache x 256 bytes of it
    // (128 KiB by default), so large classes don't pin megabytes per thread. The default is
    // large on purpose: a bin that swings between empty and full sends blocks through the
    // central lists to other threads, and every such move is a round of cache misses
    // (measured: two threads churning, cache=64 ran at 0.93x glibc's time, cache=512 at 0.51x,
    // for +0.5 MiB RSS).
    CacheLimits limits = caches.slot < 0 ? CacheLimits{} : CacheLimits{spec.cache, std::size_t{spec.cache} * 256};
    if (!fl->init(classes, limits, spec.max_bytes, spec.decay_ms, caches)) return false;
    fl->central().set_full_checks(spec.check_full);
    g_rt.layers[index].freelist = fl;
    return true;
}

}  // namespace chainalloc::preload
