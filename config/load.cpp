// CHAINALLOC_* variables -> ChainSpec. Each variable stands alone: a bad one gets its own line
// saying what is wrong and what runs instead, and every other setting still applies (a typo
// in CHAINALLOC_STATS must not drop the cap that CHAINALLOC_CHAIN asked for).
#include "config/parse.hpp"
#include "config/text.hpp"

#include <initializer_list>

namespace chainalloc::config {

namespace {

using detail::Span;
using detail::Writer;

/// The variable's value, with unset, empty and all-whitespace all meaning "not given".
const char* read(GetEnv getenv_fn, const char* name) noexcept {
    const char* v = getenv_fn(name);
    if (v == nullptr) return nullptr;
    for (const char* p = v; *p != '\0'; ++p)
        if (!detail::is_space(*p)) return v;
    return nullptr;
}

bool any_of(Span s, std::initializer_list<const char*> words) noexcept {
    for (const char* w : words)
        if (s.equals(w)) return true;
    return false;
}

constexpr const char* kFlagAccepted = "1, yes, on, true or 0, no, off, false";

class Loader {
public:
    Loader(GetEnv getenv_fn, ChainSpec& out, Diagnostic& diag) noexcept
        : env_(getenv_fn), out_(out), diag_(diag) {}

    bool run() noexcept {
        diag_.text[0] = '\0';
        default_chain(out_);
        chain();
        log();
        stats();
        flag(kStrictVar, out_.strict, "not strict");
        flag(kVerboseVar, out_.verbose, "not verbose");
        return ok_;
    }

private:
    /// Starts a new line of the diagnostic: "chainalloc: VARIABLE: ".
    Writer& fail(const char* variable) noexcept {
        if (!ok_) writer_ << '\n';
        ok_ = false;
        return writer_ << "chainalloc: " << variable << ": ";
    }

    void chain() noexcept {
        const char* chain = read(env_, kChainVar);
        const char* preset_name = read(env_, kPresetVar);
        const char* variable = kChainVar;
        if (chain != nullptr && preset_name != nullptr) {
            fail(kPresetVar) << "cannot be combined with " << kChainVar
                             << " (accepted: one of them); " << kChainVar << " is used";
        } else if (preset_name != nullptr) {
            const Preset* preset = find_preset(preset_name);
            if (preset == nullptr) {
                fail(kPresetVar) << "unknown preset '";
                writer_.quoted(Span{preset_name, detail::length(preset_name)}) << "' (accepted: ";
                bool comma = false;
                for (const Preset& p : presets()) {
                    if (comma) writer_ << ", ";
                    writer_ << p.name;
                    comma = true;
                }
                writer_ << "); running the default chain";
                return;
            }
            chain = preset->chain;
            variable = kPresetVar;
        }
        if (chain == nullptr) return;  // the default chain is already in place
        Diagnostic local;              // parse_chain writes the whole line, variable included
        if (!parse_chain(chain, out_, local, variable)) {
            if (!ok_) writer_ << '\n';
            ok_ = false;
            writer_ << local.text << "; running the default chain";
        }
    }

    void log() noexcept {
        const char* path = read(env_, kLogVar);
        if (path == nullptr) return;
        std::size_t n = detail::length(path);
        bool bad = n >= kMaxPath;
        for (std::size_t i = 0; i < n && !bad; ++i)
            bad = path[i] == ',' || path[i] == ')' || detail::is_space(path[i]);
        if (bad) {
            fail(kLogVar) << "bad log path '";
            writer_.quoted(Span{path, n}) << "' (accepted: 1 to " << std::uint32_t{kMaxPath - 1}
                                          << " characters other than ',', ')' and whitespace); no log";
            return;
        }
        if (out_.layer_count == kMaxLayers) {
            fail(kLogVar) << "no room to add proxy(log=...) to a chain of " << std::uint32_t{kMaxLayers}
                          << " layers (accepted: at most " << std::uint32_t{kMaxLayers}
                          << " layers in all); no log";
            return;
        }
        for (std::uint32_t i = out_.layer_count; i > 0; --i) out_.layers[i] = out_.layers[i - 1];
        ++out_.layer_count;
        default_layer(LayerKind::proxy, out_.layers[0]);
        for (std::size_t i = 0; i < n; ++i) out_.layers[0].proxy.log[i] = path[i];
    }

    /// A switch, "json" (JSON on stderr), or a file (a path with a '/'; "name.json" for JSON).
    void stats() noexcept {
        const char* v = read(env_, kStatsVar);
        if (v == nullptr) return;
        Span s{v, detail::length(v)};
        if (any_of(s, {"0", "no", "off", "false"})) return;
        if (any_of(s, {"1", "yes", "on", "true"})) {
            out_.stats = true;
            return;
        }
        if (s.equals("json")) {
            out_.stats = true;
            out_.stats_format = StatsFormat::json;
            return;
        }
        bool path = s.n < kMaxPath;
        bool slash = false;
        for (std::size_t i = 0; i < s.n && path; ++i) {
            path = !detail::is_space(v[i]) || v[i] == ' ';  // no tabs or newlines in a name
            slash = slash || v[i] == '/';
        }
        if (!path || !slash) {
            fail(kStatsVar) << "bad value '";
            writer_.quoted(s) << "' (accepted: " << kFlagAccepted
                              << ", json, or a file path with a '/', %p and %e expanded); statistics stay off";
            return;
        }
        out_.stats = true;
        for (std::size_t i = 0; i < s.n; ++i) out_.stats_path[i] = v[i];
        if (s.n > 5 && Span{v + s.n - 5, 5}.equals(".json")) out_.stats_format = StatsFormat::json;
    }

    void flag(const char* name, bool& value, const char* instead) noexcept {
        const char* v = read(env_, name);
        if (v == nullptr) return;
        Span s{v, detail::length(v)};
        if (any_of(s, {"0", "no", "off", "false"})) {
            value = false;
        } else if (any_of(s, {"1", "yes", "on", "true"})) {
            value = true;
        } else {
            fail(name) << "bad value '";
            writer_.quoted(s) << "' (accepted: " << kFlagAccepted << "); " << instead;
        }
    }

    GetEnv env_;
    ChainSpec& out_;
    Diagnostic& diag_;
    Writer writer_{diag_.text, kMaxDiagnostic};
    bool ok_ = true;
};

// Levenshtein distance of two short names (at most 63 bytes are compared), for "did you
// mean": two rows on the stack, no heap.
unsigned distance(const char* a, const char* b) noexcept {
    constexpr std::size_t kMax = 64;
    std::size_t n = detail::length(b) < kMax - 1 ? detail::length(b) : kMax - 1;
    unsigned row[kMax], next[kMax];
    for (std::size_t j = 0; j <= n; ++j) row[j] = static_cast<unsigned>(j);
    std::size_t m = 0;
    for (; a[m] != '\0' && a[m] != '=' && m < kMax - 1; ++m) {
        next[0] = static_cast<unsigned>(m + 1);
        for (std::size_t j = 1; j <= n; ++j) {
            unsigned replace = row[j - 1] + (a[m] == b[j - 1] ? 0 : 1);
            unsigned insert = next[j - 1] + 1, erase = row[j] + 1;
            next[j] = replace < insert ? (replace < erase ? replace : erase) : (insert < erase ? insert : erase);
        }
        for (std::size_t j = 0; j <= n; ++j) row[j] = next[j];
    }
    return row[n];
}

}  // namespace

bool load(GetEnv getenv_fn, ChainSpec& out, Diagnostic& diag) noexcept {
    return Loader(getenv_fn, out, diag).run();
}

bool check_names(const char* const* environment, Diagnostic& diag) noexcept {
    // CHAINALLOC_LIB is the launcher's (which .so it preloads), CHAINALLOC_LOG_PROGRESS and
    // CHAINALLOC_LOG_SCANNER the log reader's; children inherit them.
    static constexpr const char* kKnown[] = {kChainVar,        kPresetVar,
                                             kLogVar,          kStatsVar,
                                             kStrictVar,       kVerboseVar,
                                             "CHAINALLOC_LIB", "CHAINALLOC_LOG_PROGRESS",
                                             "CHAINALLOC_LOG_SCANNER"};
    static constexpr char kPrefix[] = "CHAINALLOC_";
    Writer w(diag.text, kMaxDiagnostic);
    bool ok = true;
    for (const char* const* e = environment; e != nullptr && *e != nullptr; ++e) {
        const char* entry = *e;
        std::size_t i = 0;
        while (kPrefix[i] != '\0' && entry[i] == kPrefix[i]) ++i;
        if (kPrefix[i] != '\0') continue;
        std::size_t name_len = 0;
        while (entry[name_len] != '\0' && entry[name_len] != '=') ++name_len;
        const char* closest = nullptr;
        unsigned best = ~0u;
        bool known = false;
        for (const char* k : kKnown) {
            if (Span{entry, name_len}.equals(k)) known = true;
            unsigned d = distance(entry, k);
            if (d < best) {
                best = d;
                closest = k;
            }
        }
        if (known) continue;
        if (!ok) w << '\n';
        ok = false;
        w << "chainalloc: ";
        w.quoted(Span{entry, name_len}) << ": unknown variable, ignored (";
        if (best <= 3)
            w << "did you mean " << closest << "?)";
        else
            w << "known: CHAINALLOC_CHAIN, _PRESET, _LOG, _STATS, _STRICT, _VERBOSE)";
    }
    return ok;
}

}  // namespace chainalloc::config
