// The preload's side of the jemalloc plugin (jemalloc_plugin.hpp): found at initialisation
// when the chain ends in `jemalloc` (plugin.hpp). Preloaded, as it must be; a dlopen works
// only while jemalloc's thread-locals still fit in the static TLS block's spare room.
#include "backends.hpp"

#include "plugin.hpp"
#include "write_all.hpp"

#include <cstdio>

#include <unistd.h>

namespace chainalloc::preload {

constinit const JemallocPlugin* g_jemalloc = nullptr;

namespace {
constinit const JemallocHost g_host = {system_allocate};
}  // namespace

bool load_jemalloc() noexcept {
    if (g_jemalloc) return true;
    const char* why;
    void* entry = find_plugin(kJemallocPluginEntry, "libchainalloc-jemalloc.so", why);
    if (!entry) {
        char line[4096 + 256];
        int n = std::snprintf(line, sizeof line,
                              "chainalloc: the jemalloc terminal needs libchainalloc-jemalloc.so preloaded after "
                              "libchainalloc.so (chainalloc run does it)%s%s; `system` ends the chain instead\n",
                              why ? ": " : "", why ? why : "");
        write_formatted(line, n);
        return false;
    }
    g_jemalloc = reinterpret_cast<JemallocPluginEntry>(entry)(&g_host);
    return g_jemalloc != nullptr;
}

}  // namespace chainalloc::preload
