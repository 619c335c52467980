// The presets table, generated at build time from config/presets/*.chain (gen_presets.py):
// the preload cannot read files while it sets itself up.
#include "config/parse.hpp"
#include "config/text.hpp"
#include "presets_table.hpp"

namespace chainalloc::config {

std::span<const Preset> presets() noexcept { return kPresetTable; }

const Preset* find_preset(const char* name) noexcept {
    if (name == nullptr) return nullptr;
    detail::Span wanted{name, detail::length(name)};
    for (const Preset& p : kPresetTable)
        if (wanted.equals(p.name)) return &p;
    return nullptr;
}

}  // namespace chainalloc::config
