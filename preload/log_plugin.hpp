// The event log lives in a plugin, libchainalloc-log.so, loaded only when the chain has a
// proxy: spdlog, fmt and the C++ runtime they need cost every process that loads them (1.8 MB
// of RSS measured on /bin/true), and most chains never log. This header is the whole contract
// between the two: what the plugin needs from the preload (LogHost) and what it offers
// (LogPlugin, the five functions of event_log.hpp, and the event they pass). Plain structs of function pointers, filled
// once; no symbol of either side is exported to the other.
#pragma once

#include "compact_format.hpp"
#include "config/chain_spec.hpp"
#include "tsc_clock.hpp"

#include <cstddef>
#include <cstdint>
#include <ctime>

namespace chainalloc::preload {

/// The moment a log's times count from: t_ns = now - mono_ns, now on CLOCK_MONOTONIC's scale
/// (tsc_clock.hpp); the header shows the start as unix_ns. A fork child starts its own, with
/// the parent's conversion: every copy of a process's clock reads the same.
struct LogClock {
    std::int64_t unix_ns, mono_ns;
    TscClock tsc{};

    /// Nanoseconds since this clock's start: an event's t_ns.
    std::uint64_t since() const noexcept {
        std::int64_t d = tsc.now() - mono_ns;
        return d > 0 ? static_cast<std::uint64_t>(d) : 0;
    }
    /// Starts counting now; the conversion stays.
    void restart() noexcept {
        unix_ns = clock_ns(CLOCK_REALTIME);
        mono_ns = tsc.now();
    }
};

/// One event, as a proxy hands it to its log; the log stamps the time and writes it as text
/// or compact records (scripts/LOG-FORMAT.md).
struct LogEvent {
    static constexpr std::uint8_t kFailed = 0xff;  // `layer` of a call that failed
    static constexpr std::uintptr_t kUnsampled = logformat::kUnsampled;  // a pointer outside the sample ('-')
    char op;  // 'm' malloc, 'c' calloc, 'a' aligned, 'r' realloc, 'f' free
    std::uint8_t layer;  // the layer that served it
    std::uint32_t tid;
    std::uint64_t size, align;  // align: 'a' only
    std::uintptr_t ptr;  // the new block (m, c, a, r) or the freed one (f); 0: none
    std::uintptr_t old;  // r: the old block, 0 for realloc(NULL, n)
};

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
    void (*attach)(unsigned layer, const config::ProxySpec& spec, LogClock clock) noexcept;
    /// With stacks on, an allocation (m, c, a, r) gets the calling thread's call stack.
    void (*write)(unsigned layer, const LogEvent& event) noexcept;
    void (*close_all)(unsigned layer, const char* footer, std::size_t len) noexcept;
    void (*before_fork)() noexcept;
    void (*after_fork)(bool child, LogClock clock) noexcept;
};

/// The plugin's one exported symbol (C linkage, so the preload finds it with dlsym).
inline constexpr const char* kLogPluginEntry = "chainalloc_log_plugin";
using LogPluginEntry = const LogPlugin* (*)(const LogHost* host);

}  // namespace chainalloc::preload
