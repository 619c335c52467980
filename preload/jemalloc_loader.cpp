// The preload's side of the jemalloc plugin (jemalloc_plugin.hpp): found at initialisation
// when the chain ends in `jemalloc`, in the process (preloaded, or linked in as by the fuzzer)
// or, failing that, by dlopen next to libchainalloc.so (which works only while jemalloc's
// thread-locals still fit in the static TLS block's spare room: usually not).
#include "backends.hpp"

#include "write_all.hpp"

#include <cstdio>
#include <cstring>

#include <dlfcn.h>
#include <unistd.h>

namespace chainalloc::preload {

constinit const JemallocPlugin* g_jemalloc = nullptr;

namespace {
constinit const JemallocHost g_host = {system_allocate};
}  // namespace

bool load_jemalloc() noexcept {
    if (g_jemalloc) return true;
    void* entry = dlsym(RTLD_DEFAULT, kJemallocPluginEntry);
    const char* why = nullptr;
    if (!entry) {
        Dl_info self;
        char path[4096];
        constexpr char kName[] = "libchainalloc-jemalloc.so";
        if (dladdr(reinterpret_cast<void*>(&load_jemalloc), &self) && self.dli_fname) {
            const char* slash = std::strrchr(self.dli_fname, '/');
            std::size_t dir = slash ? static_cast<std::size_t>(slash - self.dli_fname) + 1 : 0;
            if (dir + sizeof kName <= sizeof path) {
                std::memcpy(path, self.dli_fname, dir);
                std::memcpy(path + dir, kName, sizeof kName);
                if (void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE))
                    entry = dlsym(handle, kJemallocPluginEntry);
                else
                    why = dlerror();
            }
        }
    }
    if (!entry) {
        char line[4096 + 256];
        int n = std::snprintf(line, sizeof line,
                              "chainalloc: the jemalloc terminal needs libchainalloc-jemalloc.so preloaded after "
                              "libchainalloc.so (chainalloc run does it)%s%s; `system` ends the chain instead\n",
                              why ? ": " : "", why ? why : "");
        if (n > 0) write_all(STDERR_FILENO, line, std::min(sizeof line - 1, static_cast<std::size_t>(n)));
        return false;
    }
    g_jemalloc = reinterpret_cast<JemallocPluginEntry>(entry)(&g_host);
    return g_jemalloc != nullptr;
}

}  // namespace chainalloc::preload
