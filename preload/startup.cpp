// Start-up: the CHAINALLOC_* variables become the chain, once, on the first call or in the
// constructor, whichever comes first; calls meanwhile are served by the bootstrap arena.
#include "runtime.hpp"

#include "backends.hpp"
#include "config/parse.hpp"
#include "foreign_pointer.hpp"
#include "fork.hpp"
#include "proxy_events.hpp"
#include "write_all.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include <sys/auxv.h>
#include <unistd.h>

namespace chainalloc::preload {

// Constant-initialised: our malloc can run before this object's constructors would (from the
// loader, or another library's constructor), so it must need none.
constinit Runtime g_rt;
constinit BootstrapArena g_bootstrap;
__thread ThreadLocal t_local __attribute__((tls_model("initial-exec")));

namespace {

enum Phase : int { kUninitialised, kInitialising, kReady };
std::atomic<int> g_phase{kUninitialised};

void write_line(const char* text) noexcept { write_all(STDERR_FILENO, text, std::strlen(text)); }

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

// Out of line (as is register_thread): inlined, it made every ensure_ready() save six registers.
[[gnu::noinline]] void initialise() noexcept {
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
    thread_life_init();
    register_fork_handlers();

    // The fast path counts and checks the least: statistics, a cap (charged per request) and
    // check=full keep to the slow one. The same holds for a freelist behind the proxies.
    auto fast = [](FreelistLayer* fl) {
        return fl && fl->caches().slot == 0 && !g_rt.stats && !fl->central().capped() && !fl->central().full_checks();
    };
    if (fast(g_rt.layers[0].freelist)) g_rt.fast = g_rt.layers[0].freelist;
    unsigned proxies = 0;
    while (proxies < g_rt.count && g_rt.layers[proxies].kind == LayerKind::proxy) ++proxies;
    if (proxies && proxies < g_rt.count && fast(g_rt.layers[proxies].freelist)) {
        g_rt.behind_proxies = g_rt.layers[proxies].freelist;
        g_rt.behind_proxies_at = proxies;
    }
    if (spec.verbose) print_configuration();
}

}  // namespace

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

}  // namespace chainalloc::preload
