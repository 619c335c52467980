// Proxy layers: exact counts of what passes through them, and one log event per (sampled)
// request, handed to event_log, which stamps its time and writes it (scripts/LOG-FORMAT.md).
#include "proxy_events.hpp"

#include "event_log.hpp"
#include "runtime.hpp"
#include "text_line.hpp"

#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <ctime>

#include <sys/mman.h>
#include <unistd.h>

namespace chainalloc::preload {

__thread bool t_realloc_of_null __attribute__((tls_model("initial-exec")));

namespace {

// Exact counts, striped: a thread adds to its own cache line, so two threads logging at once
// do not pass one line back and forth on every event (measured: 4x the cost per event with
// one shared set). The first 63 threads get a stripe each, which only they write: a plain
// load and store adds to it (an event makes three additions; a locked add is ~20 cycles).
// Later threads share stripe 0 with atomic adds. Totals are the sums (relaxed loads).
struct alignas(64) Counters {
    std::atomic<std::uint64_t> malloc{0}, calloc{0}, aligned{0}, realloc{0}, free{0}, failed{0}, lines{0};
    std::atomic<std::int64_t> live_blocks{0};
};
constexpr unsigned kStripes = 64;
// The calling thread's stripe, and how to add to it: looked up once per event.
struct Tally {
    Counters& c;
    bool own;  // the thread's own stripe: a plain load and store; else the shared one, atomic
    template <class T>
    void add(std::atomic<T> Counters::*counter, T by = 1) const noexcept {
        std::atomic<T>& n = c.*counter;
        if (own) n.store(n.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
        else n.fetch_add(by, std::memory_order_relaxed);
    }
};
struct Totals {
    std::uint64_t malloc = 0, calloc = 0, aligned = 0, realloc = 0, free = 0, failed = 0, lines = 0;
    std::int64_t live_blocks = 0;
};

// The addresses of the live sampled blocks, so that a free is logged exactly when its
// allocation was. A free does not know its size, so this is the only way to tell; a set shared
// by all threads, but without a lock: each address has a window of kWindow slots (one cache
// line), taken and given back by compare-and-swap. An address is live once, so it is inserted
// once before its free can erase it. Slots are mmap'd (never the heap) the first time a proxy
// samples; a full window drops the sample (counted, the footer says so): never a lost free.
class SampledSet {
public:
    static constexpr std::size_t kWindow = 8, kWindowBits = 17;  // 2^20 slots, 8 MiB reserved

    bool map() noexcept {
        void* m = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return false;
        slots_ = static_cast<std::uintptr_t*>(m);  // zero: every slot empty
        return true;
    }
    bool insert(const void* p) noexcept {
        std::uintptr_t* w = window(p);
        for (std::size_t i = 0; i < kWindow; ++i) {
            std::uintptr_t empty = 0;
            if (std::atomic_ref(w[i]).compare_exchange_strong(empty, key(p), std::memory_order_relaxed)) return true;
        }
        return false;
    }
    bool contains(const void* p) const noexcept {
        const std::uintptr_t* w = window(p);
        for (std::size_t i = 0; i < kWindow; ++i)
            if (std::atomic_ref(const_cast<std::uintptr_t&>(w[i])).load(std::memory_order_relaxed) == key(p)) return true;
        return false;
    }
    bool erase(const void* p) noexcept {
        std::uintptr_t* w = window(p);
        for (std::size_t i = 0; i < kWindow; ++i) {
            std::uintptr_t k = key(p);
            if (std::atomic_ref(w[i]).compare_exchange_strong(k, 0, std::memory_order_relaxed)) return true;
        }
        return false;
    }

private:
    static constexpr std::size_t kBytes = (std::size_t{1} << kWindowBits) * kWindow * sizeof(std::uintptr_t);
    static std::uintptr_t key(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }
    std::uintptr_t* window(const void* p) const noexcept {
        std::uint64_t h = (key(p) >> 4) * 0x9E3779B97F4A7C15ull;
        return slots_ + (h >> (64 - kWindowBits)) * kWindow;
    }
    std::uintptr_t* slots_ = nullptr;
};

struct Proxy {
    bool logging = false;  // attached: header and footer at least
    bool lines = false;    // events=all: a line per (sampled) event; summary: none
    std::uint32_t sample = 1;  // mean bytes between two samples; 1 = every event
    Counters stripes[kStripes];
    Tally tally() noexcept;  // the calling thread's stripe
    Totals totals() const noexcept {
        Totals t;
        for (const Counters& c : stripes) {
            t.malloc += c.malloc.load(std::memory_order_relaxed);
            t.calloc += c.calloc.load(std::memory_order_relaxed);
            t.aligned += c.aligned.load(std::memory_order_relaxed);
            t.realloc += c.realloc.load(std::memory_order_relaxed);
            t.free += c.free.load(std::memory_order_relaxed);
            t.failed += c.failed.load(std::memory_order_relaxed);
            t.lines += c.lines.load(std::memory_order_relaxed);
            t.live_blocks += c.live_blocks.load(std::memory_order_relaxed);
        }
        return t;
    }
    SampledSet sampled;
    std::atomic<std::uint64_t> dropped{0};  // samples the full set could not take
};

constinit Proxy g_proxies[config::kMaxLayers];
// The log's clock: t_ns counts from its mono_ns; the header gives the same moment in Unix time.
// Its TSC conversion is measured once, at the first proxy's attach, before any event.
LogClock g_clock{0, 0};

__thread int t_tid __attribute__((tls_model("initial-exec")));
// The thread's stripe: 1..kStripes-1 its own, kStripes the shared stripe 0; 0 not given yet.
__thread unsigned t_stripe __attribute__((tls_model("initial-exec")));
std::atomic<unsigned> g_next_stripe{1};

Tally Proxy::tally() noexcept {
    unsigned stripe = t_stripe;
    if (!stripe) {
        unsigned s = g_next_stripe.fetch_add(1, std::memory_order_relaxed);
        t_stripe = stripe = s < kStripes ? s : kStripes;
    }
    return {stripes[stripe % kStripes], stripe < kStripes};
}
// Sampling by bytes: per thread and proxy, the bytes still to allocate before the next sample
// (0: not drawn yet), and the generator that draws them.
__thread std::int64_t t_bytes_left[config::kMaxLayers] __attribute__((tls_model("initial-exec")));
__thread std::uint64_t t_rng __attribute__((tls_model("initial-exec")));

std::uint32_t thread_id() noexcept {
    if (!t_tid) t_tid = static_cast<int>(gettid());
    return static_cast<std::uint32_t>(t_tid);
}

// splitmix64: a few instructions, no allocation; seeded per thread from its tid and the clock.
std::uint64_t next_random() noexcept {
    if (!t_rng) t_rng = (static_cast<std::uint64_t>(gettid()) << 32) ^ static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC));
    std::uint64_t z = (t_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// -ln(u) for u in (0, 1], without libm: the preload needs libc alone (libm cost every process
// about 290 KB of RSS, for this one call). u = m * 2^e with m in [1, 2), so ln u = e ln 2 +
// ln m, and ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with s = (m - 1)/(m + 1): eight
// terms agree with libm's log to 1e-13 relative (checked over 10^7 draws).
double minus_log(double u) noexcept {
    auto bits = std::bit_cast<std::uint64_t>(u);  // u >= 2^-53: a normal number
    int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
    double m = std::bit_cast<double>((bits & ((std::uint64_t{1} << 52) - 1)) | (std::uint64_t{1023} << 52));
    if (m > 1.4142135623730951) {  // m in [sqrt 2 / 2, sqrt 2): |s| < 0.172, and ln u near 0 stays exact
        m *= 0.5;
        ++e;
    }
    double s = (m - 1) / (m + 1), s2 = s * s, sum = 0;
    for (int k = 15; k >= 1; k -= 2) sum = sum * s2 + 1.0 / k;
    return -(e * 0.69314718055994530942 + 2 * s * sum);
}

// Bytes to the next sample: exponential with mean `mean`, rounded up. Rounding up keeps the
// sampling exact in whole bytes: a request of s bytes is sampled when the draw is <= s, with
// probability 1 - exp(-s/mean), whatever came before (the exponential has no memory).
std::int64_t draw_bytes(std::uint32_t mean) noexcept {
    double u = (static_cast<double>(next_random() >> 11) + 1.0) * 0x1p-53;  // (0, 1]
    double bytes = std::ceil(minus_log(u) * mean);
    return bytes < 1 ? 1 : static_cast<std::int64_t>(bytes);
}

// Sampling by bytes, as jemalloc's and tcmalloc's heap profilers do: a request of n bytes is
// sampled with probability 1 - exp(-n/N), so the reader weighs it 1 / that and its estimates
// are unbiased (an address hash is not: a program's addresses repeat). A request of 0 bytes
// counts as 1 so that it has a chance too (the reader does the same).
bool take_sample(unsigned layer, std::uint32_t mean, std::size_t n) noexcept {
    if (mean <= 1) return true;
    std::int64_t& left = t_bytes_left[layer];
    if (left == 0) left = draw_bytes(mean);  // this thread's first request through this proxy
    std::int64_t step = n == 0 ? 1 : n > PTRDIFF_MAX ? PTRDIFF_MAX : static_cast<std::int64_t>(n);
    if ((left -= step) > 0) return false;
    left = draw_bytes(mean);
    return true;
}

// A new block `p` of n bytes: sampled and remembered for its free. A full set drops the sample.
[[gnu::noinline]] bool sample_drawn(unsigned layer, std::size_t n, const void* p) noexcept {
    Proxy& proxy = g_proxies[layer];
    if (!take_sample(layer, proxy.sample, n)) return false;
    if (proxy.sampled.insert(p)) return true;
    proxy.dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
}
inline bool sample_block(unsigned layer, std::size_t n, const void* p) noexcept {
    return g_proxies[layer].sample <= 1 || sample_drawn(layer, n, p);
}

// Was the block `p`, now going away, sampled? It leaves the set.
inline bool sampled_free(Proxy& proxy, const void* p) noexcept { return proxy.sample <= 1 || proxy.sampled.erase(p); }

// The logger's own work: its allocations pass every proxy unlogged. An allocation also gets
// its call stack (unwound in the plugin, inside this scope).
void emit(unsigned layer, const LogEvent& event, const Tally& tally) noexcept {
    {
        LoggerScope scope;
        event_log::write(layer, event);
    }
    tally.add(&Counters::lines);
}

bool is_proxy(unsigned i) noexcept { return g_rt.layers[i].kind == LayerKind::proxy; }

void write_footer(unsigned layer) noexcept {
    Totals c = g_proxies[layer].totals();
    Line line;
    line.put("# end");
    line.field("t_ns", g_clock.since());
    line.field("events", c.lines);
    line.field("malloc", c.malloc);
    line.field("calloc", c.calloc);
    line.field("realloc", c.realloc);
    line.field("aligned", c.aligned);
    line.field("free", c.free);
    line.field("failed", c.failed);
    std::int64_t live = c.live_blocks;
    line.field("live_blocks", static_cast<std::uint64_t>(live < 0 ? 0 : live));
    if (g_proxies[layer].sample > 1) line.field("sample_dropped", g_proxies[layer].dropped.load());
    LoggerScope scope;
    event_log::close_all(layer, line.text, line.len);
}

// Footers at normal exit. Runs after the program's static destructors and atexit handlers.
__attribute__((destructor)) void on_exit_write_footers() noexcept {
    for (unsigned i = 0; i < g_rt.count; ++i)
        if (is_proxy(i) && g_proxies[i].logging) write_footer(i);
}

}  // namespace

void proxy_attach(unsigned layer, const config::ProxySpec& spec) noexcept {
    if (g_clock.mono_ns == 0) {
        g_clock.tsc = TscClock::calibrate();
        g_clock.restart();
    }
    Proxy& proxy = g_proxies[layer];
    proxy.sample = spec.sample > 1 ? spec.sample : 1;
    proxy.logging = true;
    proxy.lines = spec.events == config::Events::all;
    config::ProxySpec logged = spec;
    if (proxy.lines && proxy.sample > 1 && !proxy.sampled.map()) logged.sample = proxy.sample = 1;  // no set: log all
    event_log::attach(layer, logged, g_clock);
}

void proxy_on_allocate(unsigned layer, std::size_t n, std::size_t align, bool zero, void* result,
                       unsigned served_by) noexcept {
    Proxy& proxy = g_proxies[layer];
    // realloc(NULL, n) is served as malloc(n) but is a realloc call: counted and logged as one.
    bool as_realloc = t_realloc_of_null;
    char op = as_realloc ? 'r' : align > kMinAlign ? 'a' : zero ? 'c' : 'm';
    Tally tally = proxy.tally();
    tally.add(as_realloc ? &Counters::realloc : op == 'a' ? &Counters::aligned : zero ? &Counters::calloc : &Counters::malloc);
    if (!result) tally.add(&Counters::failed);
    else tally.add(&Counters::live_blocks, std::int64_t{1});
    if (!proxy.lines) return;
    // Failures are all logged: there is no block to sample, and they are rare and telling.
    if (result && !sample_block(layer, n, result)) return;
    emit(layer, LogEvent{op, result ? static_cast<std::uint8_t>(served_by) : LogEvent::kFailed, thread_id(), n, align,
                         reinterpret_cast<std::uintptr_t>(result), 0}, tally);
}

void proxy_on_free(unsigned owner, void* p) noexcept {
    if (in_logger()) return;
    for (unsigned i = 0; i < owner; ++i) {
        if (!is_proxy(i)) continue;
        Proxy& proxy = g_proxies[i];
        Tally tally = proxy.tally();
        tally.add(&Counters::free);
        tally.add(&Counters::live_blocks, std::int64_t{-1});
        if (!proxy.lines || !sampled_free(proxy, p)) continue;
        emit(i, LogEvent{'f', 0, thread_id(), 0, 0, reinterpret_cast<std::uintptr_t>(p), 0}, tally);
    }
}

void proxy_on_realloc(unsigned owner, void* old, std::size_t n, void* result, unsigned served_by) noexcept {
    if (in_logger()) return;
    unsigned seen_until = owner > served_by ? owner : served_by;
    for (unsigned i = 0; i < seen_until; ++i) {
        if (!is_proxy(i)) continue;
        Proxy& proxy = g_proxies[i];
        Tally tally = proxy.tally();
        tally.add(&Counters::realloc);
        if (!result) tally.add(&Counters::failed);
        if (!proxy.lines) continue;
        // For sampling, a free of `old` and an allocation of `result`; a failure (old untouched,
        // except realloc(p, 0), which freed it) is always logged.
        bool failed = !result && n != 0;
        bool old_in = failed ? proxy.sample <= 1 || proxy.sampled.contains(old) : sampled_free(proxy, old);
        bool new_in = result && sample_block(i, n, result);
        if (!old_in && !new_in && !failed) continue;
        emit(i, LogEvent{'r', result ? static_cast<std::uint8_t>(served_by) : LogEvent::kFailed, thread_id(), n, 0,
                         !result || new_in ? reinterpret_cast<std::uintptr_t>(result) : LogEvent::kUnsampled,
                         old_in ? reinterpret_cast<std::uintptr_t>(old) : LogEvent::kUnsampled}, tally);
    }
}

void proxy_before_fork() noexcept { event_log::before_fork(); }

// The child is a new process to its log: the forking thread has a new tid, the counts and the
// clock start again, and its own file opens on its first event.
void proxy_after_fork(bool child) noexcept {
    if (child) {
        t_tid = 0;
        t_rng = 0;  // the child draws its own samples, not a copy of the parent's
        g_clock.restart();  // the parent's conversion, inherited (tsc_clock.hpp)
        for (Proxy& proxy : g_proxies) {
            for (Counters& c : proxy.stripes) {
                for (auto* counter : {&c.malloc, &c.calloc, &c.aligned, &c.realloc, &c.free, &c.failed, &c.lines})
                    counter->store(0, std::memory_order_relaxed);
                c.live_blocks.store(0, std::memory_order_relaxed);
            }
            proxy.dropped.store(0, std::memory_order_relaxed);
        }
    }
    event_log::after_fork(child, g_clock);
}

ProxyCounts proxy_counts(unsigned layer) noexcept {
    Totals c = g_proxies[layer].totals();
    return {c.malloc + c.calloc + c.aligned, c.failed, c.free, c.realloc};
}

}  // namespace chainalloc::preload
