// Proxy layers: exact counts of what passes through them, and one log line per event
// (scripts/LOG-FORMAT.md), handed to event_log. Lines are formatted here by hand into a stack
// buffer: no allocation, a few dozen instructions per field.
#include "proxy_events.hpp"

#include "event_log.hpp"
#include "runtime.hpp"

#include <atomic>
#include <cstring>
#include <ctime>

#include <unistd.h>

namespace chainalloc::preload {
namespace {

struct Counters {
    std::atomic<std::uint64_t> malloc{0}, calloc{0}, aligned{0}, realloc{0}, free{0}, failed{0}, lines{0};
    std::atomic<std::int64_t> live_blocks{0};
};

struct Proxy {
    bool logging = false;  // attached: header and footer at least
    bool lines = false;    // events=all: a line per (sampled) event; summary: none
    std::uint32_t sample = 1;
    Counters counts;
    std::atomic<std::uint64_t> failures_seen{0};  // failures are sampled by count
};

constinit Proxy g_proxies[config::kMaxLayers];
// The log's clock: t_ns counts from g_start_ns; the header gives the same moment in Unix time.
std::atomic<std::int64_t> g_start_ns{0};
std::int64_t g_start_unix_ns = 0;

__thread int t_tid __attribute__((tls_model("initial-exec")));

std::int64_t clock_ns(clockid_t clock) noexcept {
    timespec ts;
    clock_gettime(clock, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
std::int64_t now_ns() noexcept { return clock_ns(CLOCK_MONOTONIC); }

void start_clock() noexcept {
    g_start_ns.store(now_ns(), std::memory_order_relaxed);
    g_start_unix_ns = clock_ns(CLOCK_REALTIME);
}

// A line under construction; fields are appended with a leading space. Digits are written
// two at a time from a table and hex by nibbles of a known count: formatting is a small part
// of an event's cost.
struct Line {
    char text[160];
    std::size_t len = 0;

    void put(char c) noexcept { text[len++] = c; }
    void dec(std::uint64_t v) noexcept {
        static constexpr char kPairs[] =
            "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
            "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
            "8081828384858687888990919293949596979899";
        char digits[20];
        char* end = digits + sizeof digits;
        char* p = end;
        while (v >= 100) {
            p -= 2;
            std::memcpy(p, kPairs + 2 * (v % 100), 2);
            v /= 100;
        }
        if (v >= 10) {
            p -= 2;
            std::memcpy(p, kPairs + 2 * v, 2);
        } else {
            *--p = static_cast<char>('0' + v);
        }
        std::memcpy(text + len, p, static_cast<std::size_t>(end - p));
        len += static_cast<std::size_t>(end - p);
    }
    void hex(const void* ptr) noexcept {
        auto v = reinterpret_cast<std::uintptr_t>(ptr);
        int nibbles = v ? (67 - __builtin_clzl(v)) / 4 : 1;
        for (int i = nibbles - 1; i >= 0; --i) text[len++] = "0123456789abcdef"[(v >> (4 * i)) & 15];
    }
    Line& sp() noexcept {
        put(' ');
        return *this;
    }
};

// "t_ns tid op"
void start_line(Line& line, char op) noexcept {
    if (!t_tid) t_tid = static_cast<int>(gettid());
    line.dec(static_cast<std::uint64_t>(now_ns() - g_start_ns.load(std::memory_order_relaxed)));
    line.sp().dec(static_cast<std::uint64_t>(t_tid));
    line.sp().put(op);
}

// With sample=N, a block is logged when its address hashes into 1/N: the same verdict for its
// allocation and its free, so sampled blocks are tracked exactly.
bool sampled(const Proxy& proxy, const void* p) noexcept {
    if (proxy.sample <= 1) return true;
    std::uint64_t h = (reinterpret_cast<std::uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ull;
    return (h >> 32) % proxy.sample == 0;
}

// The logger's own work: its allocations pass every proxy unlogged.
void emit(unsigned layer, const Line& line) noexcept {
    {
        LoggerScope scope;
        event_log::write(layer, line.text, line.len);
    }
    g_proxies[layer].counts.lines.fetch_add(1, std::memory_order_relaxed);
}

bool is_proxy(unsigned i) noexcept { return g_rt.layers[i].kind == LayerKind::proxy; }

void write_footer(unsigned layer) noexcept {
    const Counters& c = g_proxies[layer].counts;
    Line line;
    auto field = [&](const char* key, std::uint64_t v) {
        line.sp();
        for (const char* k = key; *k; ++k) line.put(*k);
        line.put('=');
        line.dec(v);
    };
    for (const char* k = "# end"; *k; ++k) line.put(*k);
    field("t_ns", static_cast<std::uint64_t>(now_ns() - g_start_ns.load(std::memory_order_relaxed)));
    field("events", c.lines.load());
    field("malloc", c.malloc.load());
    field("calloc", c.calloc.load());
    field("realloc", c.realloc.load());
    field("aligned", c.aligned.load());
    field("free", c.free.load());
    field("failed", c.failed.load());
    std::int64_t live = c.live_blocks.load();
    field("live_blocks", static_cast<std::uint64_t>(live < 0 ? 0 : live));
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
    if (g_start_ns.load() == 0) start_clock();
    Proxy& proxy = g_proxies[layer];
    proxy.sample = spec.sample > 1 ? spec.sample : 1;
    proxy.logging = true;
    proxy.lines = spec.events == config::Events::all;
    event_log::attach(layer, spec, g_start_unix_ns);
}

void proxy_on_allocate(unsigned layer, std::size_t n, std::size_t align, bool zero, void* result,
                       unsigned served_by) noexcept {
    Proxy& proxy = g_proxies[layer];
    char op = align > kMinAlign ? 'a' : zero ? 'c' : 'm';
    auto& counter = op == 'a' ? proxy.counts.aligned : zero ? proxy.counts.calloc : proxy.counts.malloc;
    counter.fetch_add(1, std::memory_order_relaxed);
    if (!result) proxy.counts.failed.fetch_add(1, std::memory_order_relaxed);
    else proxy.counts.live_blocks.fetch_add(1, std::memory_order_relaxed);
    if (!proxy.lines) return;
    if (result ? !sampled(proxy, result) : proxy.failures_seen.fetch_add(1) % proxy.sample != 0) return;
    Line line;
    start_line(line, op);
    if (op == 'a') line.sp().dec(align);
    line.sp().dec(n);
    line.sp().hex(result);
    line.sp();
    if (result) line.dec(served_by); else line.put('-');
    emit(layer, line);
}

void proxy_on_free(unsigned owner, void* p) noexcept {
    if (in_logger()) return;
    for (unsigned i = 0; i < owner; ++i) {
        if (!is_proxy(i)) continue;
        Proxy& proxy = g_proxies[i];
        proxy.counts.free.fetch_add(1, std::memory_order_relaxed);
        proxy.counts.live_blocks.fetch_sub(1, std::memory_order_relaxed);
        if (!proxy.lines || !sampled(proxy, p)) continue;
        Line line;
        start_line(line, 'f');
        line.sp().hex(p);
        emit(i, line);
    }
}

void proxy_on_realloc(unsigned owner, void* old, std::size_t n, void* result, unsigned served_by) noexcept {
    if (in_logger()) return;
    unsigned seen_until = owner > served_by ? owner : served_by;
    for (unsigned i = 0; i < seen_until; ++i) {
        if (!is_proxy(i)) continue;
        Proxy& proxy = g_proxies[i];
        proxy.counts.realloc.fetch_add(1, std::memory_order_relaxed);
        if (!result) proxy.counts.failed.fetch_add(1, std::memory_order_relaxed);
        if (!proxy.lines) continue;
        bool old_in = sampled(proxy, old), new_in = result && sampled(proxy, result);
        if (!old_in && !new_in && (result || proxy.failures_seen.fetch_add(1) % proxy.sample != 0)) continue;
        Line line;
        start_line(line, 'r');
        if (old_in) line.sp().hex(old); else line.sp().put('-');
        line.sp().dec(n);
        if (!result || new_in) line.sp().hex(result); else line.sp().put('-');
        line.sp();
        if (result) line.dec(served_by); else line.put('-');
        emit(i, line);
    }
}

void proxy_before_fork() noexcept { event_log::before_fork(); }

// The child is a new process to its log: the forking thread has a new tid, the counts and the
// clock start again, and its own file opens on its first event.
void proxy_after_fork(bool child) noexcept {
    if (child) {
        t_tid = 0;
        start_clock();
        for (Proxy& proxy : g_proxies) {
            Counters& c = proxy.counts;
            for (auto* counter : {&c.malloc, &c.calloc, &c.aligned, &c.realloc, &c.free, &c.failed, &c.lines})
                counter->store(0, std::memory_order_relaxed);
            c.live_blocks.store(0, std::memory_order_relaxed);
            proxy.failures_seen.store(0, std::memory_order_relaxed);
        }
    }
    event_log::after_fork(child, g_start_unix_ns);
}

ProxyCounts proxy_counts(unsigned layer) noexcept {
    const Counters& c = g_proxies[layer].counts;
    return {c.malloc.load() + c.calloc.load() + c.aligned.load(), c.failed.load(), c.free.load(), c.realloc.load()};
}

}  // namespace chainalloc::preload
