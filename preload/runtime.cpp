// The slow paths, initialisation and process/thread life cycle of the preload. The invariants
// that keep it correct inside arbitrary programs are written next to the code that keeps them.
#include "runtime.hpp"

#include "backends.hpp"
#include "chainalloc/null.hpp"
#include "config/parse.hpp"
#include "foreign_pointer.hpp"
#include "fork.hpp"
#include "proxy_events.hpp"
#include "write_all.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include <dlfcn.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <unistd.h>

namespace chainalloc::preload {

// Constant-initialised: our malloc can run before this object's constructors would (from the
// loader, or another library's constructor), so it must need none.
constinit Runtime g_rt;
constinit BootstrapArena g_bootstrap;
__thread ThreadLocal t_local __attribute__((tls_model("initial-exec")));

namespace {

// Storage for the freelist layers, constructed in place by initialise() and never destroyed:
// blocks stay in use until the very end of the process (other libraries' destructors, threads
// still running during exit), so the ranges must outlive every static destructor.
alignas(FreelistLayer) unsigned char g_freelist_storage[config::kMaxLayers][sizeof(FreelistLayer)];

enum Phase : int { kUninitialised, kInitialising, kReady };
std::atomic<int> g_phase{kUninitialised};
pthread_key_t g_exit_key;

void write_line(const char* text) noexcept { write_all(STDERR_FILENO, text, std::strlen(text)); }

// ---- thread life cycle --------------------------------------------------------------------

// Runs at thread exit (pthread key destructor, after the thread's C++ thread_local
// destructors). Flag first, then flush: anything the thread still allocates or frees after this
// (later key destructors, glibc's own teardown) bypasses the caches and goes to the central
// lists, so nothing is stranded in a dead thread's TLS.
void on_thread_exit(void*) noexcept {
    // Flush while still active (the layers find the thread's caches only then), flag after:
    // the flush allocates nothing, so nothing comes in between.
    g_rt.chain.flush_thread();
    t_local.state.mode = ThreadMode::exiting;
}

// Once per thread, on its first slow-path call after initialisation. The mode is set before
// pthread_setspecific, which may allocate (keys past the first 32): that call then sees an
// active thread and does not recurse here.
void register_thread() noexcept {
    t_local.state.mode = ThreadMode::active;
    pthread_setspecific(g_exit_key, &t_local);  // any non-null value makes the destructor run
}

// ---- initialisation -----------------------------------------------------------------------

// secure_getenv ignores the variables in setuid/AT_SECURE processes, as docs/DESIGN.md §3 requires.
const char* read_variable(const char* name) noexcept { return secure_getenv(name); }

// The CHAINALLOC_* variables -> spec. Each bad setting gets its line (what runs instead is in
// it) and falls back alone; a misspelled variable name gets one too. With CHAINALLOC_STRICT=1
// any of these aborts, before main when the first malloc comes from start-up code.
void configure(config::ChainSpec& spec) noexcept {
    if (getauxval(AT_SECURE)) {
        config::default_chain(spec);
        return;
    }
    config::Diagnostic values, names;
    bool ok = config::load(read_variable, spec, values);
    bool known = config::check_names(environ, names);
    for (const config::Diagnostic* d : {&values, &names}) {
        if (!d->text[0]) continue;
        write_line(d->text);
        write_line("\n");
    }
    if (spec.strict && !(ok && known)) {
        write_line("chainalloc: CHAINALLOC_STRICT=1: aborting on the setting above\n");
        abort();
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

void assemble_chain() noexcept;  // the chain's blocks, below

void initialise() noexcept {
    // glibc's malloc_usable_size, for blocks glibc made (System::usable_size). The lookup
    // allocates, so it is done here, where recursion is served by the bootstrap arena: looked
    // up lazily inside malloc, with statistics on, each allocation would look it up again,
    // until the stack ran out.
    libc::find_usable_size();
    // Before any request can fall through to glibc (see initialise_glibc_malloc): the loading
    // thread, in the constructor, while the process has one thread.
    libc::initialise_glibc_malloc();
    foreign_pointer_init();
    config::ChainSpec& spec = g_rt.spec;
    configure(spec);

    unsigned cached = 0;
    g_rt.count = 0;
    for (unsigned i = 0; i < spec.layer_count; ++i) {
        const config::LayerSpec& layer = spec.layers[i];
        unsigned index = g_rt.count;
        g_rt.layers[index].kind = layer.kind;
        if (layer.kind == LayerKind::freelist && !build_freelist(layer.freelist, index, cached)) {
            // Out of address space (a tight RLIMIT_AS): the layer steps aside, loudly.
            write_line("chainalloc: cannot reserve address space for a freelist layer; it is skipped\n");
            g_rt.layers[index].freelist = nullptr;
            continue;
        }
        if (layer.kind == LayerKind::proxy) proxy_attach(index, layer.proxy);
        ++g_rt.count;
    }
    g_rt.stats = spec.stats;
    if (g_rt.layers[g_rt.count - 1].kind == LayerKind::jemalloc) {
        bool loaded = load_jemalloc();
        if (!loaded || !g_jemalloc->init()) {
            // Without our arenas jemalloc's pointers can't be told from foreign ones: use glibc.
            if (loaded) write_line("chainalloc: jemalloc refused the arenas chainalloc needs; `system` ends the chain instead\n");
            if (spec.strict) abort();
            g_rt.layers[g_rt.count - 1].kind = LayerKind::system;
            spec.layers[spec.layer_count - 1].kind = LayerKind::system;  // what reports show
        }
    }

    assemble_chain();
    pthread_key_create(&g_exit_key, on_thread_exit);
    register_fork_handlers();

    FreelistLayer* first = g_rt.layers[0].freelist;
    // The fast path counts and checks the least: statistics, a cap (charged per request) and
    // check=full keep to the slow one.
    if (first && first->caches().slot == 0 && !g_rt.stats && !first->central().capped() && !first->central().full_checks())
        g_rt.fast = first;
    if (spec.verbose) print_configuration();
}

// True when the chain may serve this thread; false sends the request to the bootstrap arena.
// The first caller initialises; a recursive call from inside initialise() (dlsym,
// pthread_atfork, ...) and calls from other threads meanwhile get the arena instead of
// waiting. Initialisation takes microseconds, so few requests ever land there.
bool ensure_ready() noexcept {
    int phase = g_phase.load(std::memory_order_acquire);
    if (phase != kReady) [[unlikely]] {
        if (t_local.state.in_init) return false;
        if (phase == kInitialising) return false;
        int expected = kUninitialised;
        if (!g_phase.compare_exchange_strong(expected, kInitialising, std::memory_order_acq_rel))
            return expected == kReady;
        t_local.state.in_init = true;
        initialise();
        t_local.state.in_init = false;
        g_phase.store(kReady, std::memory_order_release);
    }
    if (t_local.state.mode == ThreadMode::unregistered) register_thread();
    return true;
}

// Also initialise at load time, so that CHAINALLOC_STRICT aborts before main even in a program
// that does not allocate first, and so that the first request does not pay for it.
__attribute__((constructor(101))) void on_load() noexcept { ensure_ready(); }

// ---- the chain ----------------------------------------------------------------------------
//
// g_rt.chain is the library's LayerChain: each layer a block behind its table (erased.hpp) —
// a freelist is a CachedSegregated, glibc System (in GlibcLayer), `null` Null, jemalloc
// JemallocLayer, and a proxy the ProxyLayer below, which serves through the rest of the chain and logs. What stays
// here is what only a malloc replacement needs: statistics, and who takes a pointer no layer
// owns (glibc).

// Who takes a pointer no layer owns (kForeign, glibc's): glibc, as the `system` terminal.
constinit GlibcLayer g_glibc;
constinit Null g_null;
constinit JemallocLayer g_jemalloc_layer;

const Erased& layer_at(unsigned i) noexcept {
    static constinit const Erased foreign{&kErasedOps<GlibcLayer>, &g_glibc};
    return i == kForeign ? foreign : g_rt.chain[i];
}

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
};

// Serves a request from layer `from` on; `served_by` names the layer that made the block.
// `observed` = false passes the proxies by (realloc logs its own single event).
void* serve(unsigned from, std::size_t n, std::size_t align, bool zero, unsigned& served_by,
            bool observed = true) noexcept {
    auto served = g_rt.stats ? g_rt.chain.allocate(from, n, align, zero, observed, StatsObserver{})
                             : g_rt.chain.allocate(from, n, align, zero, observed);
    served_by = served.by;
    return served.block.ptr;
}

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

// The chain's blocks, once the layers' kinds are final (a jemalloc terminal may have become
// `system`).
void assemble_chain() noexcept {
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
    const Erased& layer = layer_at(owner);
    void* q = nullptr;
    unsigned served_by = owner;
    if (layer.ops->fits_in_place) {
        // Size classes: the block stays when the new size falls in its class (or needs the
        // same slices); otherwise a new block from the whole chain, unlogged (realloc logs
        // one event below), and a copy.
        std::size_t old_size = size_in_layer(owner, p);
        if (layer.ops->fits_in_place(layer.self, p, n)) {
            q = p;
        } else {
            q = serve(0, n, kMinAlign, false, served_by, false);
            if (q) {
                std::memcpy(q, p, std::min(n, old_size));
                release(owner, p);
            }
        }
    } else {
        // glibc and jemalloc resize in place or by mremap, where they can: no copy then.
        std::size_t old_size = g_rt.stats ? size_in_layer(owner, p) : 0;
        q = layer.ops->reallocate(layer.self, p, n);
        if (q && g_rt.stats) {
            count_freed(owner, p, old_size);
            count_served(owner, q);
        }
    }
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
