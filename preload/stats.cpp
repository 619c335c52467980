// CHAINALLOC_STATS: one report at exit, a row per layer, as text or JSON, on stderr or into a
// file (CHAINALLOC_STATS=/path/%e.%p.txt: coreutils close stderr before our destructor runs,
// so a file is the way to see theirs). And CHAINALLOC_VERBOSE's line at start. Written with
// snprintf into a stack buffer and write(2): nothing here allocates, so it is safe however
// late it runs.
#include "runtime.hpp"

#include "config/parse.hpp"
#include "output_file.hpp"
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
    char buf[16384] = {};
    std::size_t len = 0;

    void add(const char* fmt, auto... args) noexcept {
        if (len >= sizeof buf) return;
        int n = std::snprintf(buf + len, sizeof buf - len, fmt, args...);
        if (n > 0) len = std::min(sizeof buf - 1, len + static_cast<std::size_t>(n));
    }
    /// A JSON string: quotes, backslashes and control bytes escaped.
    void json_string(const char* s) noexcept {
        add("\"");
        for (; *s; ++s) {
            auto c = static_cast<unsigned char>(*s);
            if (c == '"' || c == '\\')
                add("\\%c", c);
            else if (c < 0x20)
                add("\\u%04x", c);
            else
                add("%c", c);
        }
        add("\"");
    }
    void flush(int fd) noexcept {
        write_all(fd, buf, len);
        len = 0;
    }
};

constinit Out g_report;  // 16 KiB: too much for the stack of a thread that ends the process

using u64 = unsigned long long;

struct Row {
    const char* name;
    u64 requests, failed, bytes, frees, fell_through;
    long long live, peak;
};

Row row(unsigned i) noexcept {
    const LayerStats& s = g_rt.layer_stats[i];
    auto u = [](const std::atomic<std::int64_t>& w) { return static_cast<u64>(w.load(std::memory_order_relaxed)); };
    return {config::layer_name(g_rt.layers[i].kind), u(s.requests), u(s.refused) - u(s.fell_through), u(s.bytes),
            u(s.frees), u(s.fell_through), static_cast<long long>(s.live_bytes.load(std::memory_order_relaxed)),
            static_cast<long long>(s.peak_bytes.load(std::memory_order_relaxed))};
}

void text_report(Out& out, const char* chain) noexcept {
    out.add("chainalloc: %s (pid %d), chain: %s\n", program_invocation_short_name, static_cast<int>(getpid()), chain);
    out.add("  %-3s %-9s %12s %9s %11s %12s %12s %11s %12s\n", "#", "layer", "requests", "failed", "bytes", "frees",
            "live at exit", "peak live", "fell through");
    char b1[32], b2[32], b3[32];
    for (unsigned i = 0; i < g_rt.count; ++i) {
        if (g_rt.layers[i].kind == LayerKind::proxy) {
            ProxyCounts c = proxy_counts(i);
            out.add("  %-3u %-9s %12llu %9llu %11s %12llu %12s %11s %12s  (%llu reallocs)\n", i, "proxy",
                    static_cast<u64>(c.allocations), static_cast<u64>(c.failed), "-", static_cast<u64>(c.frees), "-",
                    "-", "-", static_cast<u64>(c.reallocations));
            continue;
        }
        Row r = row(i);
        out.add("  %-3u %-9s %12llu %9llu %11s %12llu %12s %11s %12llu\n", i, r.name, r.requests, r.failed,
                human(double(r.bytes), b1, sizeof b1), r.frees, human(double(r.live), b2, sizeof b2),
                human(double(r.peak), b3, sizeof b3), r.fell_through);
        if (FreelistLayer* fl = g_rt.layers[i].freelist)
            out.add("      %zu classes up to %zu bytes; %s taken from the system\n", fl->central().classes().count(),
                    fl->central().classes().max_size(), human(double(fl->central().carved_bytes()), b1, sizeof b1));
    }
    if (std::size_t used = g_bootstrap.used())
        out.add("      bootstrap arena: %s used during start-up\n", human(double(used), b1, sizeof b1));
}

// The shape is documented in README.md (Statistics); "schema" names its version.
void json_report(Out& out, const char* chain) noexcept {
    out.add("{\"schema\": \"chainalloc-stats/1\", \"program\": ");
    out.json_string(program_invocation_short_name);
    out.add(", \"pid\": %d, \"chain\": ", static_cast<int>(getpid()));
    out.json_string(chain);
    out.add(", \"bootstrap_bytes\": %zu, \"layers\": [", g_bootstrap.used());
    for (unsigned i = 0; i < g_rt.count; ++i) {
        out.add("%s\n  {\"index\": %u, \"layer\": \"%s\"", i ? "," : "", i, config::layer_name(g_rt.layers[i].kind));
        if (g_rt.layers[i].kind == LayerKind::proxy) {
            ProxyCounts c = proxy_counts(i);
            out.add(", \"requests\": %llu, \"failed\": %llu, \"frees\": %llu, \"reallocs\": %llu}",
                    static_cast<u64>(c.allocations), static_cast<u64>(c.failed), static_cast<u64>(c.frees),
                    static_cast<u64>(c.reallocations));
            continue;
        }
        Row r = row(i);
        out.add(", \"requests\": %llu, \"failed\": %llu, \"bytes\": %llu, \"frees\": %llu, \"live_bytes_at_exit\": %lld, "
                "\"peak_live_bytes\": %lld, \"fell_through\": %llu",
                r.requests, r.failed, r.bytes, r.frees, r.live, r.peak, r.fell_through);
        if (FreelistLayer* fl = g_rt.layers[i].freelist)
            out.add(", \"classes\": %zu, \"largest_class\": %zu, \"taken_from_system\": %zu",
                    fl->central().classes().count(), fl->central().classes().max_size(), fl->central().carved_bytes());
        out.add("}");
    }
    out.add("\n]}\n");
}

}  // namespace

void print_stats() noexcept {
    char chain[1024];
    config::format_chain(g_rt.spec, chain, sizeof chain, g_rt.spec.stats_format == config::StatsFormat::text);
    Out& out = g_report;
    out.len = 0;
    if (g_rt.spec.stats_format == config::StatsFormat::json)
        json_report(out, chain);
    else
        text_report(out, chain);
    int fd = STDERR_FILENO;
    if (g_rt.spec.stats_path[0]) {
        char path[kPathCap];
        const char* why = nullptr;
        fd = open_output(g_rt.spec.stats_path, 0, path, sizeof path, why);
        if (fd < 0) {
            char line[kPathCap + 160];
            std::snprintf(line, sizeof line, "chainalloc: cannot create the statistics file '%s': %s\n", path,
                          why ? why : std::strerror(errno));
            write_all(STDERR_FILENO, line, std::strlen(line));
            return;
        }
    }
    out.flush(fd);
    if (fd != STDERR_FILENO) {
        NoCancel no_cancel;
        close(fd);
    }
}

void print_configuration() noexcept {
    char chain[1024];
    config::format_chain(g_rt.spec, chain, sizeof chain, true);
    const config::ChainSpec& spec = g_rt.spec;
    char line[1400];
    std::snprintf(line, sizeof line, "chainalloc: %s (pid %d): chain %s; statistics %s%s%s; strict %s\n",
                  program_invocation_short_name, static_cast<int>(getpid()), chain,
                  !spec.stats ? "off" : spec.stats_format == config::StatsFormat::json ? "json" : "on",
                  spec.stats_path[0] ? " to " : "", spec.stats_path, spec.strict ? "on" : "off");
    write_all(STDERR_FILENO, line, std::strlen(line));
}

namespace {
__attribute__((destructor)) void on_unload() noexcept {
    if (g_rt.stats) print_stats();
}
}  // namespace

}  // namespace chainalloc::preload
