// CHAINALLOC_STATS=1: one table on stderr at exit, a row per layer. Written with snprintf into
// a stack buffer and write(2): nothing here allocates, so it is safe however late it runs.
#include "runtime.hpp"

#include "config/parse.hpp"
#include "proxy_events.hpp"
#include "write_all.hpp"

#include <cstdio>
#include <cstring>

#include <unistd.h>

namespace chainalloc::preload {
namespace {

// "12.3 MiB"-style, into buf.
const char* human(double bytes, char* buf, std::size_t cap) noexcept {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    while (bytes >= 1024 && u + 1 < sizeof units / sizeof *units) {
        bytes /= 1024;
        ++u;
    }
    std::snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

struct Out {
    char buf[8192];
    std::size_t len = 0;

    void add(const char* fmt, auto... args) noexcept {
        if (len >= sizeof buf) return;
        int n = std::snprintf(buf + len, sizeof buf - len, fmt, args...);
        if (n > 0) len = std::min(sizeof buf, len + static_cast<std::size_t>(n));
    }
    void flush() noexcept {
        write_all(STDERR_FILENO, buf, len);
        len = 0;
    }
};

}  // namespace

void print_stats() noexcept {
    char chain[1024];
    config::format_chain(g_rt.spec, chain, sizeof chain);
    char program[64] = "?";
    if (ssize_t n = readlink("/proc/self/exe", program, sizeof program - 1); n > 0) program[n] = 0;
    const char* base = std::strrchr(program, '/');

    Out out;
    out.add("chainalloc: %s (pid %d), chain: %s\n", base ? base + 1 : program, static_cast<int>(getpid()), chain);
    out.add("  %-3s %-9s %12s %12s %12s %12s %12s %12s\n", "#", "layer", "requests", "bytes", "frees",
            "live at exit", "peak live", "fell through");
    char b1[32], b2[32], b3[32];
    for (unsigned i = 0; i < g_rt.count; ++i) {
        const LayerStats& s = g_rt.layer_stats[i];
        const char* name = config::layer_name(g_rt.layers[i].kind);
        if (g_rt.layers[i].kind == LayerKind::proxy) {
            ProxyCounts c = proxy_counts(i);
            out.add("  %-3u %-9s %12llu %12s %12llu %12s  (%llu reallocs, %llu failed)\n", i, name,
                    static_cast<unsigned long long>(c.allocations), "-", static_cast<unsigned long long>(c.frees), "-",
                    static_cast<unsigned long long>(c.reallocations), static_cast<unsigned long long>(c.failed));
            continue;
        }
        out.add("  %-3u %-9s %12llu %12s %12llu %12s %12s %12llu\n", i, name,
                static_cast<unsigned long long>(s.requests.load()), human(double(s.bytes.load()), b1, sizeof b1),
                static_cast<unsigned long long>(s.frees.load()), human(double(s.live.load()), b2, sizeof b2),
                human(double(s.peak.load()), b3, sizeof b3), static_cast<unsigned long long>(s.fallthroughs.load()));
        if (FreelistLayer* fl = g_rt.layers[i].freelist)
            out.add("      %zu classes up to %zu bytes; %s taken from the system\n", fl->central.classes().count(),
                    fl->central.classes().max_size(), human(double(fl->central.carved_bytes()), b1, sizeof b1));
    }
    if (std::size_t used = g_bootstrap.used())
        out.add("      bootstrap arena: %s used during start-up\n", human(double(used), b1, sizeof b1));
    out.flush();
}

namespace {
__attribute__((destructor)) void on_unload() noexcept {
    if (g_rt.stats) print_stats();
}
}  // namespace

}  // namespace chainalloc::preload
