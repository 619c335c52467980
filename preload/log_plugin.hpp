// The event log lives in a plugin, libchainalloc-log.so, loaded only when the chain has a
// proxy: spdlog, fmt and the C++ runtime they need cost every process that loads them (1.8 MB
// of RSS measured on /bin/true), and most chains never log. This header is the whole contract
// between the two: what the plugin needs from the preload (LogHost) and what it offers
// (LogPlugin, the five functions of event_log.hpp). Plain structs of function pointers, filled
// once; no symbol of either side is exported to the other.
#pragma once

#include "config/chain_spec.hpp"

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload {

struct LogHost {
    /// True while the calling thread may be inside glibc's malloc: inside the log (runtime.hpp's
    /// LoggerScope) or in a layer's call into glibc (in_glibc_heap). A child forked from a signal
    /// handler that interrupted it does not log: its logger would allocate from that heap.
    bool (*in_logger)() noexcept;
    /// output_file.hpp's open_output.
    int (*open_output)(const char* pattern, unsigned mode, char* path, std::size_t cap, const char*& why) noexcept;
    /// The chain as the header shows it: its text, and its layer kinds ("proxy,freelist,system").
    void (*describe_chain)(char* chain, std::size_t chain_cap, char* layers, std::size_t layers_cap) noexcept;
};

struct LogPlugin {
    void (*attach)(unsigned layer, const config::ProxySpec& spec, std::int64_t start_unix_ns) noexcept;
    /// `allocation`: the line is an allocation's (m, c, a, r); with stacks on, the plugin adds
    /// the calling thread's call stack to it (call_stacks.hpp).
    void (*write)(unsigned layer, const char* line, std::size_t len, bool allocation) noexcept;
    void (*close_all)(unsigned layer, const char* footer, std::size_t len) noexcept;
    void (*before_fork)() noexcept;
    void (*after_fork)(bool child, std::int64_t start_unix_ns) noexcept;
};

/// The plugin's one exported symbol (C linkage, so the preload finds it with dlsym).
inline constexpr const char* kLogPluginEntry = "chainalloc_log_plugin";
using LogPluginEntry = const LogPlugin* (*)(const LogHost* host);

}  // namespace chainalloc::preload
