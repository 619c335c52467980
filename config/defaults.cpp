// What a layer means when no keys are given, and the default chain (docs/DESIGN.md §3).
#include "config/parse.hpp"

#include <chainalloc/default_classes.hpp>

namespace chainalloc::config {

namespace {

// The library's default table (chainalloc/default_classes.hpp), the one SizeClasses::defaults()
// gives too.
void default_classes(FreeListSpec& fl) noexcept {
    static_assert(DefaultClasses::kCount <= kMaxClasses);
    fl.class_count = DefaultClasses::kCount;
    for (std::size_t i = 0; i < DefaultClasses::kCount; ++i) fl.classes[i] = kDefaultClasses.sizes[i];
}

}  // namespace

void default_layer(LayerKind kind, LayerSpec& out) noexcept {
    out = LayerSpec{};
    out.kind = kind;
    if (kind == LayerKind::freelist) {
        default_classes(out.freelist);
        out.freelist.max_bytes = 0;
        out.freelist.cache = 512;
        out.freelist.decay_ms = kDefaultDecayMs;
    } else if (kind == LayerKind::proxy) {
        out.proxy.events = Events::all;
        out.proxy.sample = 1;
        out.proxy.mode = 0600;
        out.proxy.stacks = kDefaultStackDepth;
    }
}

void default_chain(ChainSpec& out) noexcept {
    out = ChainSpec{};
    default_layer(LayerKind::freelist, out.layers[0]);
    default_layer(LayerKind::system, out.layers[1]);
    out.layer_count = 2;
}

const char* layer_name(LayerKind kind) noexcept {
    switch (kind) {
        case LayerKind::freelist: return "freelist";
        case LayerKind::proxy: return "proxy";
        case LayerKind::system: return "system";
        case LayerKind::jemalloc: return "jemalloc";
        case LayerKind::null: return "null";
    }
    return "?";
}

}  // namespace chainalloc::config
