// chainalloc-config: shows how chainalloc understands a chain, the presets, or the environment.
// An ordinary program, so it uses iostream and std::string freely.
#include <cstdlib>
#include <iostream>
#include <string>

#include <unistd.h>

#include "config/parse.hpp"

namespace cfg = chainalloc::config;

namespace {

std::string canonical(const cfg::ChainSpec& spec) {
    std::string text(cfg::kMaxChainText, '\0');
    text.resize(cfg::format_chain(spec, text.data(), text.size()));
    return text;
}

/// 65536 -> "64 KiB"; sizes that are not whole units stay in bytes.
std::string human_size(std::uint64_t bytes) {
    static const char* units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; ++i) {
        std::uint64_t unit = std::uint64_t{1} << (40 - 10 * i);
        if (bytes >= unit && bytes % unit == 0)
            return std::to_string(bytes / unit) + " " + units[i];
    }
    return std::to_string(bytes) + " bytes";
}

std::string describe(const cfg::LayerSpec& layer) {
    switch (layer.kind) {
        case cfg::LayerKind::freelist: {
            const cfg::FreeListSpec& fl = layer.freelist;
            std::string s =
                std::to_string(fl.class_count) + (fl.class_count == 1 ? " class " : " classes ");
            s += std::to_string(fl.classes[0]);
            if (fl.class_count > 1) s += ".." + std::to_string(fl.classes[fl.class_count - 1]);
            s += " bytes, ";
            s += fl.max_bytes == 0 ? "no cap" : "cap " + human_size(fl.max_bytes) + " in all";
            s += ", ";
            s += fl.cache == 0 ? "no thread cache"
                               : std::to_string(fl.cache) + " blocks cached per thread per class";
            s += ", pages with every block free given back ";
            if (fl.decay_ms == 0)
                s += "at once";
            else if (fl.decay_ms % 1000 == 0)
                s += "after " + std::to_string(fl.decay_ms / 1000) + " s";
            else
                s += "after " + std::to_string(fl.decay_ms) + " ms";
            if (fl.check_full) s += ", full checks (live bits, poisoned free blocks)";
            return s;
        }
        case cfg::LayerKind::proxy: {
            const cfg::ProxySpec& px = layer.proxy;
            std::string s = "log to ";
            std::string log = px.log;
            if (log.empty())
                s += "chainalloc.%e.%p.log (the default)";
            else if (log == "-" || log == "stderr")
                s += "standard error";
            else
                s += log;
            s += px.events == cfg::Events::summary ? ", a summary only" : ", every kind of event";
            s += px.sample == 1 ? ", no sampling"
                                : ", a sample every " + std::to_string(px.sample) + " bytes on average";
            s += px.format == cfg::LogFormat::text ? ", as text lines" : ", as compact records";
            if (px.events == cfg::Events::all)
                s += px.stacks ? ", call stacks of up to " + std::to_string(px.stacks) + " frames" : ", no call stacks";
            return s;
        }
        case cfg::LayerKind::system: return "glibc malloc (terminal)";
        case cfg::LayerKind::jemalloc: return "jemalloc (terminal)";
        case cfg::LayerKind::null: return "fails every request (terminal)";
    }
    return "?";
}

void print_chain(const cfg::ChainSpec& spec) {
    std::cout << canonical(spec) << '\n';
    for (std::uint32_t i = 0; i < spec.layer_count; ++i)
        std::cout << i + 1 << ". " << cfg::layer_name(spec.layers[i].kind) << ": "
                  << describe(spec.layers[i]) << '\n';
}

int usage() {
    std::cerr
        << "usage: chainalloc-config check 'CHAIN'   show how a chain is understood\n"
           "       chainalloc-config presets         list the shipped presets\n"
           "       chainalloc-config env             parse CHAINALLOC_* as the preload would\n";
    return 2;
}

int check(const char* text) {
    cfg::ChainSpec spec;
    cfg::Diagnostic diag;
    if (!cfg::parse_chain(text, spec, diag)) {
        std::cerr << diag.text << '\n';
        return 1;
    }
    print_chain(spec);
    return 0;
}

int list_presets() {
    for (const cfg::Preset& p : cfg::presets())
        std::cout << p.name << '\n'
                  << "  chain:   " << p.chain << '\n'
                  << "  summary: " << p.summary << '\n';
    return 0;
}

// The preload reads the variables with secure_getenv, so setuid programs ignore them.
const char* env_lookup(const char* name) { return secure_getenv(name); }

int env() {
    cfg::ChainSpec spec;
    cfg::Diagnostic values, names;
    bool ok = cfg::load(env_lookup, spec, values);
    bool known = cfg::check_names(environ, names);
    for (const cfg::Diagnostic* d : {&values, &names})
        if (d->text[0]) std::cerr << d->text << '\n';
    if (spec.strict && !(ok && known)) {
        std::cout << "CHAINALLOC_STRICT=1: the process would abort\n";
        return 1;
    }
    if (!ok) std::cout << "the bad settings fall back, the others apply:\n";
    print_chain(spec);
    std::cout << "stats: " << (!spec.stats ? "off" : spec.stats_format == cfg::StatsFormat::json ? "json" : "on")
              << (spec.stats_path[0] ? std::string(" to ") + spec.stats_path : std::string())
              << ", strict: " << (spec.strict ? "on" : "off") << ", verbose: " << (spec.verbose ? "on" : "off")
              << '\n';
    return ok && known ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string command = argv[1];
    if (command == "check" && argc == 3) return check(argv[2]);
    if (command == "presets" && argc == 2) return list_presets();
    if (command == "env" && argc == 2) return env();
    return usage();
}
