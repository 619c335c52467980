// ChainSpec: what the CHAINALLOC_* variables mean, as plain data (docs/DESIGN.md §3).
//
// Produced by config/parse.hpp, consumed by the preload. Fixed-size arrays only: the parser runs
// inside the first malloc of a process and must not allocate. Every field has a value (unused
// ones are zero), so two specs compare equal exactly when they describe the same chain.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc::config {

inline constexpr unsigned kMaxLayers = 8;
inline constexpr unsigned kMaxClasses = 64;
inline constexpr unsigned kMaxPath = 256;        // proxy log path, including the NUL
inline constexpr unsigned kMaxDiagnostic = 2048;  // error lines (one per bad setting), with the NUL
inline constexpr unsigned kMaxChainText = 8192;  // enough for format_chain of any ChainSpec

inline constexpr std::uint32_t kClassAlign = 16;
inline constexpr std::uint64_t kMaxClassSize = std::uint64_t{256} << 20;
inline constexpr std::uint32_t kMaxCache = 65536;
inline constexpr std::uint32_t kMaxDecayMs = 3600 * 1000;  // one hour
inline constexpr std::uint32_t kDefaultDecayMs = 1000;
// Call stack depth a proxy records with each allocation (`stacks=N`): 0 turns stacks off. The
// default keeps the frames that name a call site in C, C++ and interpreters (measured: 24
// frames cost little more than 16; the log's stack table holds each distinct stack once).
inline constexpr std::uint32_t kMaxStackDepth = 128;
inline constexpr std::uint32_t kDefaultStackDepth = 24;

enum class LayerKind : std::uint8_t { freelist, proxy, system, jemalloc, null };
enum class Events : std::uint8_t { all, summary };
// How a proxy's log is written (`format=`): compact binary records (version 2, the default) or
// one text line per event (version 1). Both are read by `chainalloc log`.
enum class LogFormat : std::uint8_t { compact, text };

struct FreeListSpec {
    std::uint32_t class_count = 0;
    std::uint32_t classes[kMaxClasses] = {};  // ascending, distinct, multiples of 16
    std::uint64_t max_bytes = 0;              // 0 = no cap
    std::uint32_t cache = 0;                  // blocks per thread per class; 0 = no thread cache
    std::uint32_t decay_ms = 0;               // ms an all-free page stays mapped; 0 = none
    bool check_full = false;                  // check=full: live bits and poison (DESIGN §4.8)

    friend bool operator==(const FreeListSpec&, const FreeListSpec&) = default;
};

struct ProxySpec {
    char log[kMaxPath] = {};  // "" = default path chainalloc.%e.%p.log; "-" or "stderr" allowed
    Events events = Events::all;
    std::uint32_t sample = 0;  // 1 = every event
    std::uint32_t mode = 0;    // the log file's permissions (0600 by default_layer)
    std::uint32_t stacks = 0;  // frames of call stack per allocation; 0 = none (default_layer: 24)
    LogFormat format = LogFormat::compact;

    friend bool operator==(const ProxySpec&, const ProxySpec&) = default;
};

/// One layer. Only the member matching `kind` is meaningful; the other stays zeroed.
struct LayerSpec {
    LayerKind kind = LayerKind::freelist;
    FreeListSpec freelist;
    ProxySpec proxy;

    friend bool operator==(const LayerSpec&, const LayerSpec&) = default;
};

/// Outermost layer first; the last one is terminal (system, jemalloc or null).
/// Where CHAINALLOC_STATS sends the report at exit.
enum class StatsFormat : std::uint8_t { text, json };

struct ChainSpec {
    std::uint32_t layer_count = 0;
    LayerSpec layers[kMaxLayers];
    bool stats = false;
    StatsFormat stats_format = StatsFormat::text;
    char stats_path[kMaxPath] = {};  // "" = stderr; %p and %e expand as in log paths
    bool strict = false;
    bool verbose = false;  // CHAINALLOC_VERBOSE: the configuration on stderr at start

    friend bool operator==(const ChainSpec&, const ChainSpec&) = default;
};

/// One line per bad setting, each "chainalloc: VARIABLE: what is wrong (accepted: ...); what
/// runs instead", separated by '\n', no trailing newline; "" = no error.
struct Diagnostic {
    char text[kMaxDiagnostic] = {};
};

/// A named chain shipped in config/presets/<name>.chain, embedded at build time.
struct Preset {
    const char* name;
    const char* chain;
    const char* summary;
};

}  // namespace chainalloc::config
