// The configuration parser: CHAINALLOC_* text -> ChainSpec (DESIGN.md §3).
//
// Everything here allocates nothing, throws nothing and prints nothing, because it runs inside
// the first malloc of an arbitrary process. Errors come back as one line in a Diagnostic, e.g.
//   chainalloc: CHAINALLOC_CHAIN: unknown layer 'fre' (accepted: freelist, proxy, system, ...)
// and the caller decides whether to print it and whether to abort.
#pragma once

#include <cstddef>
#include <span>

#include "config/chain_spec.hpp"

namespace chainalloc::config {

inline constexpr const char* kChainVar = "CHAINALLOC_CHAIN";
inline constexpr const char* kPresetVar = "CHAINALLOC_PRESET";
inline constexpr const char* kLogVar = "CHAINALLOC_LOG";
inline constexpr const char* kStatsVar = "CHAINALLOC_STATS";
inline constexpr const char* kStrictVar = "CHAINALLOC_STRICT";

/// How the parser reads a variable: getenv, secure_getenv, or a fake in tests. nullptr = unset.
using GetEnv = const char* (*)(const char* name);

/// Parses chain text such as "freelist(classes=16..256/16, max=64M) > system" into
/// out.layer_count and out.layers; out.stats and out.strict are left as they are.
/// On error returns false, puts one line naming `variable` in diag and the default chain's
/// layers in out. On success diag.text is "".
bool parse_chain(const char* text, ChainSpec& out, Diagnostic& diag,
                 const char* variable = kChainVar) noexcept;

/// The default chain: freelist (default classes, no cap, cache 64) > system; stats and strict off.
void default_chain(ChainSpec& out) noexcept;

/// Default settings for one layer of the given kind (what `name` without keys means).
void default_layer(LayerKind kind, LayerSpec& out) noexcept;

/// Reads CHAINALLOC_CHAIN, _PRESET, _LOG, _STATS and _STRICT through getenv_fn.
/// On error returns false, keeps the first error in diag, and leaves the default chain in out
/// with whatever valid stats/strict values were given. Empty variables count as unset.
bool load(GetEnv getenv_fn, ChainSpec& out, Diagnostic& diag) noexcept;

/// Writes the canonical text of spec's chain into buf (always NUL-terminated when cap > 0,
/// truncated if need be), e.g.
///   freelist(classes=16..128/16,160..256/32,...,max=0,cache=512) > system
/// Returns the full length of the text, as snprintf does: a result >= cap means truncation.
/// parse_chain of this text gives back the same layers.
std::size_t format_chain(const ChainSpec& spec, char* buf, std::size_t cap) noexcept;

/// "freelist", "proxy", "system", "jemalloc", "null" (or "?" for a value outside the enum).
const char* layer_name(LayerKind kind) noexcept;

/// True for the layers that must end a chain: system, jemalloc, null.
constexpr bool is_terminal(LayerKind kind) noexcept {
    return kind == LayerKind::system || kind == LayerKind::jemalloc || kind == LayerKind::null;
}

/// The shipped presets, "default" first, then by name.
std::span<const Preset> presets() noexcept;

/// The preset called `name`, or nullptr.
const Preset* find_preset(const char* name) noexcept;

}  // namespace chainalloc::config
