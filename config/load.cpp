// CHAINALLOC_* variables -> ChainSpec. Every variable is read and checked, so stats/strict keep
// their valid values even when the chain is bad, but only the first error is reported.
#include "config/parse.hpp"
#include "config/text.hpp"

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

class Loader {
public:
    Loader(GetEnv getenv_fn, ChainSpec& out, Diagnostic& diag) noexcept
        : env_(getenv_fn), out_(out), diag_(diag) {}

    bool run() noexcept {
        diag_.text[0] = '\0';
        default_chain(out_);
        chain();
        log();
        flag(kStatsVar, out_.stats);
        flag(kStrictVar, out_.strict);
        if (!ok_) {
            bool stats = out_.stats, strict = out_.strict;
            default_chain(out_);
            out_.stats = stats;
            out_.strict = strict;
        }
        return ok_;
    }

private:
    /// Starts the error line if it is the first error; otherwise writes into a scratch buffer.
    Writer fail(const char* variable) noexcept {
        bool first = ok_;
        ok_ = false;
        Writer w = first ? Writer(diag_.text, kMaxDiagnostic) : Writer(scratch_, sizeof scratch_);
        w << "chainalloc: " << variable << ": ";
        return w;
    }

    void chain() noexcept {
        const char* chain = read(env_, kChainVar);
        const char* preset_name = read(env_, kPresetVar);
        if (chain != nullptr && preset_name != nullptr) {
            fail(kPresetVar) << "cannot be combined with " << kChainVar
                             << " (accepted: one of them)";
            return;
        }
        const char* variable = kChainVar;
        if (preset_name != nullptr) {
            const Preset* preset = find_preset(preset_name);
            if (preset == nullptr) {
                Writer w = fail(kPresetVar);
                w << "unknown preset '";
                w.quoted(Span{preset_name, detail::length(preset_name)}) << "' (accepted: ";
                bool comma = false;
                for (const Preset& p : presets()) {
                    if (comma) w << ", ";
                    w << p.name;
                    comma = true;
                }
                w << ')';
                return;
            }
            chain = preset->chain;
            variable = kPresetVar;
        }
        if (chain == nullptr) return;  // the default chain is already in place
        Diagnostic local;              // parse_chain writes the whole line, variable included
        if (!parse_chain(chain, out_, local, variable)) {
            if (ok_)
                for (unsigned i = 0; i < kMaxDiagnostic; ++i) diag_.text[i] = local.text[i];
            ok_ = false;
        }
    }

    void log() noexcept {
        const char* path = read(env_, kLogVar);
        if (path == nullptr || !ok_) return;
        std::size_t n = detail::length(path);
        bool bad = n >= kMaxPath;
        for (std::size_t i = 0; i < n && !bad; ++i)
            bad = path[i] == ',' || path[i] == ')' || detail::is_space(path[i]);
        if (bad) {
            Writer w = fail(kLogVar);
            w << "bad log path '";
            w.quoted(Span{path, n}) << "' (accepted: 1 to " << std::uint32_t{kMaxPath - 1}
                                    << " characters other than ',', ')' and whitespace)";
            return;
        }
        if (out_.layer_count == kMaxLayers) {
            fail(kLogVar) << "no room to add proxy(log=...) to a chain of "
                          << std::uint32_t{kMaxLayers} << " layers (accepted: at most "
                          << std::uint32_t{kMaxLayers} << " layers in all)";
            return;
        }
        for (std::uint32_t i = out_.layer_count; i > 0; --i) out_.layers[i] = out_.layers[i - 1];
        ++out_.layer_count;
        default_layer(LayerKind::proxy, out_.layers[0]);
        for (std::size_t i = 0; i < n; ++i) out_.layers[0].proxy.log[i] = path[i];
    }

    void flag(const char* name, bool& value) noexcept {
        const char* v = read(env_, name);
        if (v == nullptr) return;
        Span s{v, detail::length(v)};
        if (s.equals("0")) {
            value = false;
        } else if (s.equals("1")) {
            value = true;
        } else {
            Writer w = fail(name);
            w << "bad value '";
            w.quoted(s) << "' (accepted: 0 or 1)";
        }
    }

    GetEnv env_;
    ChainSpec& out_;
    Diagnostic& diag_;
    bool ok_ = true;
    char scratch_[kMaxDiagnostic] = {};
};

}  // namespace

bool load(GetEnv getenv_fn, ChainSpec& out, Diagnostic& diag) noexcept {
    return Loader(getenv_fn, out, diag).run();
}

}  // namespace chainalloc::config
