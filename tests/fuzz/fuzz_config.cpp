// Fuzz target: the configuration parser (config/), CHAINALLOC_* text -> ChainSpec.
//
// The parser runs inside the first malloc of arbitrary processes, on text anyone can set, so
// every input must be handled without crashing and without touching the heap. Checks:
//  - no crash, no ASan/UBSan report;
//  - load: each bad variable falls back alone, so whatever happens the spec holds a valid
//    chain (1..kMaxLayers layers, the last one and only the last one terminal) and
//    format_chain -> parse_chain gives back the same layers; a failure has one non-empty line
//    per bad variable ("chainalloc: CHAINALLOC_...: ..."), at most one per variable;
//  - parse_chain: on failure one non-empty line and the default chain;
//  - check_names (misspelled CHAINALLOC_* names, built from the same values): one line each;
//  - no heap allocation at all inside load / parse_chain / format_chain (counted with the
//    sanitizer's malloc hooks, as the static check_no_heap.py cannot see every path).
//
// Input: the values of CHAINALLOC_CHAIN, _PRESET, _LOG, _STATS, _STRICT and _VERBOSE, in order,
// separated by NUL bytes (an environment value cannot hold a NUL); a missing value is unset.
// The first value also goes straight to parse_chain.
#include "config/parse.hpp"

#include <sanitizer/allocator_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace config = chainalloc::config;

namespace {

// Set while the parser runs; the hooks count what is allocated meanwhile, on this thread only:
// libFuzzer's own threads (its RSS watcher, its timer) allocate whenever they wake, and a
// global flag counted their calls as the parser's (a false "heap used inside" now and then).
thread_local bool g_in_parser = false;
unsigned g_heap_calls = 0;

void on_malloc(const volatile void*, std::size_t) {
    if (g_in_parser) ++g_heap_calls;
}
void on_free(const volatile void*) {
    if (g_in_parser) ++g_heap_calls;
}

[[noreturn]] void fail(const char* what, const char* detail = "") {
    std::fprintf(stderr, "fuzz_config: %s %s\n", what, detail);
    std::abort();
}

// Runs fn with the heap watched; any allocation or free inside is a finding.
template <class Fn>
auto watched(const char* name, Fn fn) {
    g_heap_calls = 0;
    g_in_parser = true;
    auto result = fn();
    g_in_parser = false;
    if (g_heap_calls != 0) fail("heap used inside", name);
    return result;
}

constexpr const char* kVars[] = {config::kChainVar,  config::kPresetVar, config::kLogVar,
                                 config::kStatsVar,  config::kStrictVar, config::kVerboseVar};
constexpr int kVarCount = 6;
const char* g_values[kVarCount];

const char* fake_getenv(const char* name) {
    for (int i = 0; i < kVarCount; ++i)
        if (std::strcmp(name, kVars[i]) == 0) return g_values[i];
    return nullptr;
}

void check_one_line(const config::Diagnostic& diag, const char* who) {
    std::size_t n = strnlen(diag.text, config::kMaxDiagnostic);
    if (n == 0) fail("empty diagnostic from", who);
    if (n == config::kMaxDiagnostic) fail("diagnostic not NUL-terminated from", who);
    if (std::memchr(diag.text, '\n', n) || std::memchr(diag.text, '\r', n))
        fail("diagnostic is more than one line:", diag.text);
}

// One line per bad setting: at most kVarCount, each "chainalloc: CHAINALLOC_...".
void check_lines(const config::Diagnostic& diag, const char* who, int most) {
    std::size_t n = strnlen(diag.text, config::kMaxDiagnostic);
    if (n == 0) fail("empty diagnostic from", who);
    if (n == config::kMaxDiagnostic) fail("diagnostic not NUL-terminated from", who);
    if (std::memchr(diag.text, '\r', n)) fail("carriage return in a diagnostic:", diag.text);
    int lines = 0;
    for (const char* line = diag.text; line; ++lines) {
        if (std::strncmp(line, "chainalloc: ", 12) != 0) fail("a diagnostic line without its prefix:", line);
        const char* next = std::strchr(line, '\n');
        if (next && next[1] == '\0') fail("a diagnostic ends with a newline:", diag.text);
        line = next ? next + 1 : nullptr;
    }
    if (lines > most) fail("more diagnostic lines than settings:", diag.text);
}

bool same_layers(const config::ChainSpec& a, const config::ChainSpec& b) {
    if (a.layer_count != b.layer_count) return false;
    for (unsigned i = 0; i < a.layer_count; ++i)
        if (!(a.layers[i] == b.layers[i])) return false;
    return true;
}

void check_default(const config::ChainSpec& spec, const char* who) {
    config::ChainSpec def;
    config::default_chain(def);
    if (!same_layers(spec, def)) fail("failure left a chain other than the default:", who);
}

void check_valid_chain(const config::ChainSpec& spec) {
    if (spec.layer_count < 1 || spec.layer_count > config::kMaxLayers) fail("bad layer count");
    for (unsigned i = 0; i + 1 < spec.layer_count; ++i)
        if (config::is_terminal(spec.layers[i].kind)) fail("terminal layer before the end");
    if (!config::is_terminal(spec.layers[spec.layer_count - 1].kind)) fail("last layer not terminal");
}

// format_chain -> parse_chain must give back the same layers.
void check_round_trip(const config::ChainSpec& spec) {
    static char text[config::kMaxChainText];
    std::size_t len = watched("format_chain",
                              [&] { return config::format_chain(spec, text, sizeof text); });
    if (len >= sizeof text) fail("format_chain needed more than kMaxChainText");
    static config::ChainSpec again;
    static config::Diagnostic diag;
    bool ok = watched("parse_chain (round trip)",
                      [&] { return config::parse_chain(text, again, diag); });
    if (!ok) {
        std::fprintf(stderr, "text: %s\ndiag: %s\n", text, diag.text);
        fail("format_chain's text does not parse");
    }
    if (!same_layers(spec, again)) fail("round trip changed the chain:", text);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    // The heap check is only worth something if the hooks fire: prove it once.
    g_in_parser = true;
    void* volatile probe = std::malloc(16);
    std::free(probe);
    g_in_parser = false;
    if (g_heap_calls != 2) fail("the sanitizer's malloc hooks do not fire");
    g_heap_calls = 0;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Split into NUL-terminated values (the copy is made here, outside the watched calls).
    std::vector<char> buf(data, data + size);
    buf.push_back('\0');
    for (const char*& v : g_values) v = nullptr;
    std::size_t start = 0;
    for (int i = 0; i < kVarCount && start <= size; ++i) {
        g_values[i] = buf.data() + start;
        start += std::strlen(g_values[i]) + 1;
    }

    // Static: ChainSpec is large, and the parser must cope with whatever was left in it.
    static config::ChainSpec spec;
    static config::Diagnostic diag;

    bool ok = watched("load", [&] { return config::load(fake_getenv, spec, diag); });
    if (ok && diag.text[0] != '\0') fail("success with a diagnostic:", diag.text);
    if (!ok) check_lines(diag, "load", kVarCount);
    check_valid_chain(spec);
    check_round_trip(spec);

    // The same values as variable names: CHAINALLOC_<value>=1 (static: no heap in the check).
    static char names[kVarCount][config::kMaxPath];
    static const char* env[kVarCount + 1];
    int count = 0;
    for (int i = 0; i < kVarCount; ++i) {
        if (g_values[i] == nullptr) continue;
        std::snprintf(names[count], sizeof names[count], "CHAINALLOC_%s=1", g_values[i]);
        env[count] = names[count];
        ++count;
    }
    env[count] = nullptr;
    bool known = watched("check_names", [&] { return config::check_names(env, diag); });
    if (!known) check_lines(diag, "check_names", count);

    if (g_values[0] != nullptr) {
        bool parsed = watched("parse_chain",
                              [&] { return config::parse_chain(g_values[0], spec, diag); });
        if (parsed) {
            check_valid_chain(spec);
            check_round_trip(spec);
        } else {
            check_one_line(diag, "parse_chain");
            check_default(spec, "parse_chain");
        }
    }
    return 0;
}
