// What a layer means when no keys are given, and the default chain (docs/DESIGN.md §3).
#include "config/parse.hpp"

namespace chainalloc::config {

namespace {

// 16..128 in steps of 16, then four classes per doubling up to 32 KiB: 40 classes whose
// rounding waste stays below 25% (the usual size-class shape).
void default_classes(FreeListSpec& fl) noexcept {
    fl.class_count = 0;
    for (std::uint32_t size = 16; size <= 128; size += 16) fl.classes[fl.class_count++] = size;
    for (std::uint32_t base = 128; base < 32768; base *= 2)
        for (std::uint32_t quarter = 1; quarter <= 4; ++quarter)
            fl.classes[fl.class_count++] = base + quarter * (base / 4);
}

}  // namespace

void default_layer(LayerKind kind, LayerSpec& out) noexcept {
    out = LayerSpec{};
    out.kind = kind;
    if (kind == LayerKind::freelist) {
        default_classes(out.freelist);
        out.freelist.max_bytes = 0;
        out.freelist.cache = 512;
    } else if (kind == LayerKind::proxy) {
        out.proxy.events = Events::all;
        out.proxy.sample = 1;
        out.proxy.mode = 0600;
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
