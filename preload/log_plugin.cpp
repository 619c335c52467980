// The preload's side of the event log plugin (log_plugin.hpp): event_log.hpp's functions,
// forwarded to libchainalloc-log.so once the first proxy layer attaches. Until then, or when it
// cannot be loaded (one line says so), the proxies count and log nothing.
#include "log_plugin.hpp"

#include "event_log.hpp"
#include "output_file.hpp"
#include "plugin.hpp"
#include "runtime.hpp"
#include "write_all.hpp"

#include "config/parse.hpp"

#include <cstdio>
#include <cstring>

#include <unistd.h>

namespace chainalloc::preload::event_log {
namespace {

const LogPlugin* g_plugin = nullptr;

bool host_in_logger() noexcept { return in_glibc_heap(); }

void host_describe_chain(char* chain, std::size_t chain_cap, char* layers, std::size_t layers_cap) noexcept {
    config::format_chain(g_rt.spec, chain, chain_cap);
    layers[0] = '\0';
    for (unsigned i = 0; i < g_rt.count; ++i) {
        std::size_t used = std::strlen(layers);
        std::snprintf(layers + used, layers_cap - used, "%s%s", i ? "," : "", config::layer_name(g_rt.layers[i].kind));
    }
}

constinit const LogHost g_host = {host_in_logger, open_output, host_describe_chain};

const LogPlugin* load() noexcept {
    const char* why;
    void* entry = find_plugin(kLogPluginEntry, "libchainalloc-log.so", why);
    if (!entry) {
        char line[4096 + 160];
        int n = std::snprintf(line, sizeof line, "chainalloc: cannot load the event log%s%s; proxies count, but log nothing\n",
                              why ? ": " : "", why ? why : "");
        write_formatted(line, n);
        return nullptr;
    }
    return reinterpret_cast<LogPluginEntry>(entry)(&g_host);
}

}  // namespace

void attach(unsigned layer, const config::ProxySpec& spec, LogClock clock) noexcept {
    static bool tried = false;  // initialisation is single-threaded
    if (!tried) {
        tried = true;
        g_plugin = load();
    }
    if (g_plugin) g_plugin->attach(layer, spec, clock);
}

void write(unsigned layer, const LogEvent& event) noexcept {
    if (g_plugin) g_plugin->write(layer, event);
}

void close_all(unsigned layer, const char* footer, std::size_t len) noexcept {
    if (g_plugin) g_plugin->close_all(layer, footer, len);
}

void before_fork() noexcept {
    if (g_plugin) g_plugin->before_fork();
}

void after_fork(bool child, LogClock clock) noexcept {
    if (g_plugin) g_plugin->after_fork(child, clock);
}

}  // namespace chainalloc::preload::event_log
