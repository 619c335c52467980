// The configuration parser: CHAINALLOC_* text -> ChainSpec (docs/DESIGN.md §3).
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
inline constexpr const char* kVerboseVar = "CHAINALLOC_VERBOSE";

/// How the parser reads a variable: getenv, secure_getenv, or a fake in tests. nullptr = unset.
using GetEnv = const char* (*)(const char* name);

/// Parses chain text such as "freelist(classes=16..256/16, max=64M) > system" into
/// out.layer_count and out.layers; out.stats and out.strict are left as they are.
/// On error returns false, puts one line naming `variable` in diag and the default chain's
/// layers in out. On success diag.text is "".
bool parse_chain(const char* text, ChainSpec& out, Diagnostic& diag,
                 const char* variable = kChainVar) noexcept;

/// The default chain: freelist (default classes, no cap, cache 512, decay 1s) > system; stats and
/// strict off.
void default_chain(ChainSpec& out) noexcept;

/// Default settings for one layer of the given kind (what `name` without keys means).
void default_layer(LayerKind kind, LayerSpec& out) noexcept;

/// Reads CHAINALLOC_CHAIN, _PRESET, _LOG, _STATS, _STRICT and _VERBOSE through getenv_fn.
/// Each is taken on its own: a bad one is left at its default (a bad chain or preset runs the
/// default chain, a bad log path logs nothing, ...) and gets one line in diag saying what is
/// wrong and what runs instead; the others apply. Returns false if any was bad. Empty
/// variables count as unset. Flags accept 1/yes/on/true and 0/no/off/false; CHAINALLOC_STATS
/// also "json", or a file path with a '/' (JSON when it ends in ".json").
bool load(GetEnv getenv_fn, ChainSpec& out, Diagnostic& diag) noexcept;

/// Looks through an environment (NAME=VALUE entries, nullptr-terminated) for CHAINALLOC_*
/// names that mean nothing, a misspelling most likely: one line each in diag ("did you mean
/// CHAINALLOC_CHAIN?" when one is close). Returns false if any was found.
bool check_names(const char* const* environment, Diagnostic& diag) noexcept;

/// Writes the canonical text of spec's chain into buf (always NUL-terminated when cap > 0,
/// truncated if need be), e.g.
///   freelist(classes=16..128/16,160..256/32,...,max=0,cache=512,decay=1s) > system
/// Returns the full length of the text, as snprintf does: a result >= cap means truncation.
/// parse_chain of this text gives back the same layers. `brief` writes a freelist's classes as
/// their count and range instead and leaves out decay= at its default
/// ("freelist(40 classes 16..32K,max=0,cache=512)"), for reports meant to be read, not parsed.
std::size_t format_chain(const ChainSpec& spec, char* buf, std::size_t cap, bool brief = false) noexcept;

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
