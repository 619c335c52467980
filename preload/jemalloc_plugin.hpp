// The jemalloc terminal lives in a plugin, libchainalloc-jemalloc.so, so that jemalloc and what
// it pulls in (libstdc++ and libm: 1.7 MB of RSS measured on /bin/true) load only into the
// processes whose chain ends in `jemalloc`. jemalloc's thread-locals are initial-exec (2.6 KiB),
// which only fit while the static TLS block is laid out at start-up: the plugin is preloaded
// next to the preload (LD_PRELOAD="libchainalloc.so libchainalloc-jemalloc.so"; `chainalloc
// run` does it), not dlopen()ed later. This header is the whole contract between the two.
#pragma once

#include <cstddef>

namespace chainalloc::preload {

struct JemallocHost {
    /// glibc's, for a block jemalloc hands out outside our arenas (backends.hpp).
    void* (*system_allocate)(std::size_t n, std::size_t align, bool zero) noexcept;
};

struct JemallocPlugin {
    bool (*init)() noexcept;  // creates our arenas (jemalloc_arenas.hpp); false: jemalloc refused
    bool (*owns)(const void* p) noexcept;
    void* (*allocate)(std::size_t n, std::size_t align, bool zero) noexcept;
    void* (*reallocate)(void* p, std::size_t n) noexcept;
    void (*deallocate)(void* p) noexcept;
    std::size_t (*usable_size)(const void* p) noexcept;
};

inline constexpr const char* kJemallocPluginEntry = "chainalloc_jemalloc_plugin";
using JemallocPluginEntry = const JemallocPlugin* (*)(const JemallocHost* host);

}  // namespace chainalloc::preload
