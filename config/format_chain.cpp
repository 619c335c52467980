// ChainSpec -> canonical chain text. Every key is written (so the text says everything the
// preload will do) except an empty proxy log, which means "the default path", and a proxy mode
// at its default. Runs of three or more classes with a common step are written as A..B/S.
// The brief form, for reports, also leaves out a freelist's decay at its default.
#include "config/parse.hpp"
#include "config/text.hpp"

namespace chainalloc::config {

namespace {

using detail::Writer;

void write_classes(Writer& w, const FreeListSpec& fl) noexcept {
    std::uint32_t count = fl.class_count < kMaxClasses ? fl.class_count : kMaxClasses;
    std::uint32_t i = 0;
    while (i < count) {
        if (i != 0) w << ',';
        std::uint32_t run_end = i;  // last index of the arithmetic run starting at i
        if (i + 2 < count) {
            std::uint32_t step = fl.classes[i + 1] - fl.classes[i];
            while (run_end + 1 < count && fl.classes[run_end + 1] - fl.classes[run_end] == step)
                ++run_end;
        }
        if (run_end >= i + 2) {
            w << fl.classes[i] << ".." << fl.classes[run_end] << '/'
              << (fl.classes[i + 1] - fl.classes[i]);
            i = run_end + 1;
        } else {
            w << fl.classes[i];
            ++i;
        }
    }
}

/// 0, or the number with the largest of K, M, G, T that divides it exactly.
void write_size(Writer& w, std::uint64_t bytes) noexcept {
    static constexpr char kSuffix[] = {'T', 'G', 'M', 'K'};
    static constexpr unsigned kShift[] = {40, 30, 20, 10};
    if (bytes != 0) {
        for (unsigned i = 0; i < 4; ++i) {
            std::uint64_t unit = std::uint64_t{1} << kShift[i];
            if (bytes % unit == 0) {
                w << bytes / unit << kSuffix[i];
                return;
            }
        }
    }
    w << bytes;
}

/// 0, whole seconds as Ns, anything else as Nms: the units the parser takes.
void write_duration(Writer& w, std::uint32_t ms) noexcept {
    if (ms != 0 && ms % 1000 == 0) {
        w << ms / 1000 << 's';
        return;
    }
    w << ms;
    if (ms != 0) w << "ms";
}

// brief: the class list as its count and range (a list of 40 classes is 100 characters no one
// reads in a one-line report).
void write_layer(Writer& w, const LayerSpec& layer, bool brief) noexcept {
    w << layer_name(layer.kind);
    if (layer.kind == LayerKind::freelist) {
        const FreeListSpec& fl = layer.freelist;
        if (brief && fl.class_count > 3) {
            w << '(' << fl.class_count << " classes ";
            write_size(w, fl.classes[0]);
            w << "..";
            write_size(w, fl.classes[fl.class_count - 1]);
        } else {
            w << "(classes=";
            write_classes(w, fl);
        }
        w << ",max=";
        write_size(w, layer.freelist.max_bytes);
        w << ",cache=" << layer.freelist.cache;
        if (!brief || fl.decay_ms != kDefaultDecayMs) {
            w << ",decay=";
            write_duration(w, fl.decay_ms);
        }
        if (fl.check_full) w << ",check=full";  // shown only when not the default, as mode= is
        w << ')';
    } else if (layer.kind == LayerKind::proxy) {
        w << '(';
        if (layer.proxy.log[0] != '\0') {
            w << "log=";
            for (unsigned i = 0; i < kMaxPath && layer.proxy.log[i] != '\0'; ++i)
                w << layer.proxy.log[i];
            w << ',';
        }
        w << "events=" << (layer.proxy.events == Events::summary ? "summary" : "all")
          << ",sample=" << layer.proxy.sample << ",stacks=" << layer.proxy.stacks;
        if (layer.proxy.format == LogFormat::text) w << ",format=text";  // shown when not the default
        if (layer.proxy.mode != 0600) {  // shown when not the default, as chmod writes it
            w << ",mode=0";
            for (int shift = 6; shift >= 0; shift -= 3) w << static_cast<char>('0' + ((layer.proxy.mode >> shift) & 7));
        }
        w << ')';
    }
}

}  // namespace

std::size_t format_chain(const ChainSpec& spec, char* buf, std::size_t cap, bool brief) noexcept {
    Writer w(buf, cap);
    std::uint32_t count = spec.layer_count < kMaxLayers ? spec.layer_count : kMaxLayers;
    for (std::uint32_t i = 0; i < count; ++i) {
        if (i != 0) w << " > ";
        write_layer(w, spec.layers[i], brief);
    }
    return w.length();
}

}  // namespace chainalloc::config
