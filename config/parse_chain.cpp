// The chain parser: a hand-written recursive descent over the input in place (no tokens are
// copied, nothing is allocated). Grammar, whitespace allowed around every token:
//
//   chain  := layer ('>' layer)*
//   layer  := name ['(' [key '=' value (',' key '=' value)*] ')']
//   value  := chars up to ',' ')' or whitespace; for classes=, a list of N or A..B[/S] items
//             that ends at ')' or at a ',' followed by `ident =`
#include "config/parse.hpp"
#include "config/text.hpp"

#include <span>

namespace chainalloc::config {

namespace {

using detail::Span;
using detail::Writer;

constexpr const char* kLayersAccepted = "freelist, proxy, system, jemalloc, null";
constexpr const char* kSizeAccepted = "a number with optional K, M, G or T suffix";

struct LayerName {
    const char* name;
    LayerKind kind;
};
constexpr LayerName kLayerNames[] = {
    {"freelist", LayerKind::freelist}, {"proxy", LayerKind::proxy}, {"system", LayerKind::system},
    {"jemalloc", LayerKind::jemalloc}, {"null", LayerKind::null},
};

bool is_value_end(char c) noexcept { return c == ',' || c == ')' || detail::is_space(c); }

class Parser {
public:
    Parser(const char* text, ChainSpec& out, Diagnostic& diag, const char* variable) noexcept
        : cur_(text), end_(text + detail::length(text)), out_(out), diag_(diag), var_(variable) {}

    bool chain() noexcept {
        skip_space();
        if (at_end()) {
            fail() << "empty chain (accepted: layers separated by '>', e.g. freelist > system)";
            return false;
        }
        for (;;) {
            if (!layer()) return false;
            skip_space();
            if (at_end()) break;
            if (*cur_ != '>') {
                // After `name` a '(' would have been taken; after `name(...)` it cannot come.
                const LayerSpec& last = out_.layers[out_.layer_count - 1];
                fail() << "unexpected '";
                writer_.quoted(word()) << "' after layer '" << layer_name(last.kind)
                                       << "' (accepted: '>' or end of chain)";
                return false;
            }
            if (is_terminal(out_.layers[out_.layer_count - 1].kind)) {
                fail() << "terminal layer '" << layer_name(out_.layers[out_.layer_count - 1].kind)
                       << "' must be last";
                return false;
            }
            ++cur_;  // '>'
        }
        if (!is_terminal(out_.layers[out_.layer_count - 1].kind)) {
            fail() << "chain must end with a terminal layer (system, jemalloc, null), not '"
                   << layer_name(out_.layers[out_.layer_count - 1].kind) << "'";
            return false;
        }
        return true;
    }

private:
    // --- lexing -------------------------------------------------------------------------------

    bool at_end() const noexcept { return cur_ == end_; }
    void skip_space() noexcept {
        while (cur_ != end_ && detail::is_space(*cur_)) ++cur_;
    }
    Span ident() noexcept {
        const char* start = cur_;
        if (cur_ != end_ && detail::is_alpha(*cur_)) {
            while (cur_ != end_ &&
                   (detail::is_alpha(*cur_) || detail::is_digit(*cur_) || *cur_ == '_'))
                ++cur_;
        }
        return {start, std::size_t(cur_ - start)};
    }
    Span value() noexcept {
        const char* start = cur_;
        while (cur_ != end_ && !is_value_end(*cur_)) ++cur_;
        return {start, std::size_t(cur_ - start)};
    }
    /// What to show as "the bad token" at the cursor: a run up to the next separator, or the
    /// separator itself. Does not move the cursor.
    Span word() const noexcept {
        const char* p = cur_;
        while (p != end_ && !detail::is_space(*p) && *p != ',' && *p != '(' && *p != ')' &&
               *p != '>' && *p != '=')
            ++p;
        if (p == cur_ && p != end_) ++p;
        return {cur_, std::size_t(p - cur_)};
    }
    /// "'tok'" or "end of text", for "found ..." messages.
    Writer& found() noexcept {
        if (at_end()) return writer_ << "end of text";
        return writer_.put('\'').quoted(word()).put('\'');
    }
    Writer& fail() noexcept { return writer_ << "chainalloc: " << var_ << ": "; }

    // --- layers -------------------------------------------------------------------------------

    bool layer() noexcept {
        skip_space();
        Span name = ident();
        if (name.empty()) {
            fail() << "expected a layer name, found ";
            found() << " (accepted: " << kLayersAccepted << ")";
            return false;
        }
        const LayerName* known = nullptr;
        for (const LayerName& l : kLayerNames)
            if (name.equals(l.name)) known = &l;
        if (known == nullptr) {
            fail() << "unknown layer '";
            writer_.quoted(name) << "' (accepted: " << kLayersAccepted << ")";
            return false;
        }
        if (out_.layer_count == kMaxLayers) {
            fail() << "more than " << std::uint32_t{kMaxLayers} << " layers at '";
            writer_.quoted(name) << "' (accepted: at most " << std::uint32_t{kMaxLayers} << ")";
            return false;
        }
        LayerSpec& spec = out_.layers[out_.layer_count++];
        default_layer(known->kind, spec);
        seen_ = 0;

        skip_space();
        if (at_end() || *cur_ != '(') return true;
        ++cur_;
        skip_space();
        if (!at_end() && *cur_ == ')') {
            ++cur_;
            return true;
        }
        for (;;) {
            skip_space();
            if (!setting(spec)) return false;
            skip_space();
            if (!at_end() && *cur_ == ',') {
                ++cur_;
                continue;
            }
            if (!at_end() && *cur_ == ')') {
                ++cur_;
                return true;
            }
            fail() << "expected ',' or ')' in " << layer_name(spec.kind) << "(...), found ";
            found() << " (accepted: key=value pairs separated by ',' and closed by ')')";
            return false;
        }
    }

    // --- keys ---------------------------------------------------------------------------------

    using KeyParser = bool (Parser::*)(LayerSpec&) noexcept;
    /// Every key of every layer, in the order messages list them: one table, so the accepted
    /// names, the parsers and the "given twice" bits cannot drift apart.
    struct Key {
        LayerKind kind;
        const char* name;
        KeyParser parse;
    };
    static std::span<const Key> keys() noexcept;  // below the class, after the parsers

    /// "classes, max, cache, decay, check" for a freelist; "none" for a layer without keys.
    Writer& keys_accepted(LayerKind kind) noexcept {
        bool any = false;
        for (const Key& k : keys()) {
            if (k.kind != kind) continue;
            if (any) writer_ << ", ";
            writer_ << k.name;
            any = true;
        }
        if (!any) writer_ << "none";
        return writer_;
    }

    /// One `key=value`.
    bool setting(LayerSpec& spec) noexcept {
        const char* kind = layer_name(spec.kind);
        Span key = ident();
        if (key.empty()) {
            fail() << "expected a key in " << kind << "(...), found ";
            found() << " (accepted: ";
            keys_accepted(spec.kind) << ")";
            return false;
        }
        const std::span<const Key> all = keys();
        unsigned index = 0;
        while (index < all.size() && !(all[index].kind == spec.kind && key.equals(all[index].name))) ++index;
        if (index == all.size()) {
            fail() << "unknown key '";
            writer_.quoted(key) << "' for " << kind << " (accepted: ";
            keys_accepted(spec.kind) << ")";
            return false;
        }
        if (seen_ & (1u << index)) {
            fail() << "key '";
            writer_.quoted(key) << "' given twice for " << kind << " (accepted: each key once)";
            return false;
        }
        seen_ |= 1u << index;
        skip_space();
        if (at_end() || *cur_ != '=') {
            fail() << "expected '=' after key '";
            writer_.quoted(key) << "', found ";
            found() << " (accepted: " << kind << "(key=value, ...))";
            return false;
        }
        ++cur_;
        skip_space();
        return (this->*all[index].parse)(spec);
    }

    // --- freelist keys ------------------------------------------------------------------------

    bool classes(LayerSpec& spec) noexcept {
        FreeListSpec& fl = spec.freelist;
        fl.class_count = 0;
        for (;;) {
            Span item = value();
            if (!class_item(fl, item)) return false;
            // The list goes on after a ',' unless what follows is the next `key =`.
            const char* after_item = cur_;
            skip_space();
            if (at_end() || *cur_ != ',') break;
            ++cur_;
            skip_space();
            const char* item_start = cur_;
            if (!ident().empty()) {
                skip_space();
                if (!at_end() && *cur_ == '=') {
                    cur_ = after_item;
                    break;
                }
            }
            cur_ = item_start;
        }
        return true;
    }

    /// `N` or `A..B` or `A..B/S` (step 16 when omitted); each size may carry a K/M/G/T suffix.
    bool class_item(FreeListSpec& fl, Span item) noexcept {
        if (item.empty()) {
            if (fl.class_count == 0) {
                fail() << "empty list for 'classes' (accepted: sizes or A..B/S ranges "
                          "separated by ',')";
                return false;
            }
            fail() << "expected a class in classes=, found ";
            found() << " (accepted: N or A..B/S, multiples of 16)";
            return false;
        }
        std::size_t dots = item.n;
        for (std::size_t i = 0; i + 1 < item.n; ++i)
            if (item.p[i] == '.' && item.p[i + 1] == '.') {
                dots = i;
                break;
            }
        std::uint64_t first = 0, last = 0, step = kClassAlign;
        bool ok;
        if (dots == item.n) {
            ok = size_of(Span{item.p, item.n}, first);
            last = first;
        } else {
            std::size_t slash = item.n;
            for (std::size_t i = dots + 2; i < item.n; ++i)
                if (item.p[i] == '/') {
                    slash = i;
                    break;
                }
            ok = size_of(Span{item.p, dots}, first) &&
                 size_of(Span{item.p + dots + 2, slash - dots - 2}, last) &&
                 (slash == item.n || size_of(Span{item.p + slash + 1, item.n - slash - 1}, step));
            if (ok && (step == 0 || first > last)) {
                fail() << "bad range '";
                writer_.quoted(item) << "' (accepted: A..B/S with A <= B and S > 0)";
                return false;
            }
        }
        if (!ok) {
            fail() << "bad class '";
            writer_.quoted(item) << "' (accepted: N or A..B/S, multiples of 16)";
            return false;
        }
        for (std::uint64_t size = first;;) {
            if (!add_class(fl, size, item)) return false;
            if (last - size < step) break;
            size += step;
        }
        return true;
    }

    static bool size_of(Span s, std::uint64_t& out) noexcept {
        return detail::parse_size(s, out) == detail::SizeResult::ok;
    }

    /// Inserts in order, skipping duplicates, so the result is sorted and distinct. `item` is
    /// the list item that produced `size`, for the error message.
    bool add_class(FreeListSpec& fl, std::uint64_t size, Span item) noexcept {
        if (size == 0) {
            fail() << "class 0 is not a positive size (accepted: multiples of 16 up to 256M)";
            return false;
        }
        if (size % kClassAlign != 0) {
            fail() << "class " << size << " is not a multiple of 16";
            return false;
        }
        if (size > kMaxClassSize) {
            fail() << "class " << size << " is larger than 256M (accepted: at most "
                   << kMaxClassSize << ")";
            return false;
        }
        auto s = static_cast<std::uint32_t>(size);
        std::uint32_t i = 0;
        while (i < fl.class_count && fl.classes[i] < s) ++i;
        if (i < fl.class_count && fl.classes[i] == s) return true;
        if (fl.class_count == kMaxClasses) {
            fail() << "more than " << std::uint32_t{kMaxClasses} << " classes at '";
            writer_.quoted(item) << "' (accepted: at most " << std::uint32_t{kMaxClasses} << ")";
            return false;
        }
        for (std::uint32_t j = fl.class_count; j > i; --j) fl.classes[j] = fl.classes[j - 1];
        fl.classes[i] = s;
        ++fl.class_count;
        return true;
    }

    bool max_bytes(LayerSpec& spec) noexcept {
        FreeListSpec& fl = spec.freelist;
        Span v = value();
        switch (detail::parse_size(v, fl.max_bytes)) {
            case detail::SizeResult::ok: return true;
            case detail::SizeResult::overflow:
                fail() << "size '";
                writer_.quoted(v) << "' for max is too large (accepted: " << kSizeAccepted
                                  << ", below 2^64 bytes)";
                return false;
            case detail::SizeResult::bad: break;
        }
        fail() << "bad size '";
        writer_.quoted(v) << "' for max (accepted: " << kSizeAccepted << ")";
        return false;
    }

    bool cache(LayerSpec& spec) noexcept {
        FreeListSpec& fl = spec.freelist;
        Span v = value();
        std::uint64_t n = 0;
        if (!detail::parse_uint(v, kMaxCache, n)) {
            fail() << "bad cache '";
            writer_.quoted(v) << "' (accepted: an integer 0.." << kMaxCache << ")";
            return false;
        }
        fl.cache = static_cast<std::uint32_t>(n);
        return true;
    }

    /// `N` or `Nms` (milliseconds) or `Ns` (seconds). Lower-case units only: `5m` or `5M` could
    /// be read as minutes or as mega, so neither is guessed at.
    bool decay(LayerSpec& spec) noexcept {
        Span v = value();
        std::size_t digits = 0;
        while (digits < v.n && detail::is_digit(v.p[digits])) ++digits;
        Span unit{v.p + digits, v.n - digits};
        std::uint32_t scale = unit.empty() || unit.equals("ms") ? 1 : unit.equals("s") ? 1000 : 0;
        std::uint64_t n = 0;
        // The limit is applied before scaling, so no digit string can overflow.
        if (scale == 0 || !detail::parse_uint(Span{v.p, digits}, kMaxDecayMs / scale, n)) {
            fail() << "bad decay '";
            writer_.quoted(v) << "' (accepted: milliseconds 0.." << kMaxDecayMs
                              << " as N or Nms, or seconds 0.." << kMaxDecayMs / 1000 << " as Ns)";
            return false;
        }
        spec.freelist.decay_ms = static_cast<std::uint32_t>(n) * scale;
        return true;
    }

    /// `cheap` (the checks every list makes, the default) or `full` (adds live bits and poison).
    bool check(LayerSpec& spec) noexcept {
        Span v = value();
        if (!v.equals("cheap") && !v.equals("full")) {
            fail() << "bad check '";
            writer_.quoted(v) << "' (accepted: cheap, full)";
            return false;
        }
        spec.freelist.check_full = v.equals("full");
        return true;
    }

    // --- proxy keys ---------------------------------------------------------------------------

    bool log(LayerSpec& spec) noexcept {
        ProxySpec& px = spec.proxy;
        Span v = value();
        if (v.empty() || v.n >= kMaxPath) {
            fail() << "bad log path '";
            writer_.quoted(v) << "' (accepted: 1 to " << std::uint32_t{kMaxPath - 1}
                              << " characters other than ',', ')' and whitespace)";
            return false;
        }
        for (std::size_t i = 0; i < kMaxPath; ++i) px.log[i] = i < v.n ? v.p[i] : '\0';
        return true;
    }

    bool events(LayerSpec& spec) noexcept {
        ProxySpec& px = spec.proxy;
        Span v = value();
        if (v.equals("all")) {
            px.events = Events::all;
        } else if (v.equals("summary")) {
            px.events = Events::summary;
        } else {
            fail() << "bad events '";
            writer_.quoted(v) << "' (accepted: all, summary)";
            return false;
        }
        return true;
    }

    bool sample(LayerSpec& spec) noexcept {
        ProxySpec& px = spec.proxy;
        Span v = value();
        std::uint64_t n = 0;
        if (!detail::parse_uint(v, UINT32_MAX, n) || n == 0) {
            fail() << "bad sample '";
            writer_.quoted(v) << "' (accepted: an integer 1.." << std::uint32_t{UINT32_MAX}
                              << ", 1 = every event)";
            return false;
        }
        px.sample = static_cast<std::uint32_t>(n);
        return true;
    }

    /// Frames of call stack logged with each allocation, 0..kMaxStackDepth; 0 = no stacks.
    bool stacks(LayerSpec& spec) noexcept {
        Span v = value();
        std::uint64_t n = 0;
        if (!detail::parse_uint(v, kMaxStackDepth, n)) {
            fail() << "bad stacks '";
            writer_.quoted(v) << "' (accepted: an integer 0.." << kMaxStackDepth << ", 0 = no call stacks)";
            return false;
        }
        spec.proxy.stacks = static_cast<std::uint32_t>(n);
        return true;
    }

    bool format(LayerSpec& spec) noexcept {
        Span v = value();
        if (v.equals("compact")) {
            spec.proxy.format = LogFormat::compact;
        } else if (v.equals("text")) {
            spec.proxy.format = LogFormat::text;
        } else {
            fail() << "bad format '";
            writer_.quoted(v) << "' (accepted: compact, text)";
            return false;
        }
        return true;
    }

    /// The log file's permissions, in octal as chmod takes them (0600 by default).
    bool mode(LayerSpec& spec) noexcept {
        Span v = value();
        std::uint32_t m = 0;
        bool ok = !v.empty() && v.n <= 4;
        for (std::size_t i = 0; ok && i < v.n; ++i) {
            ok = v.p[i] >= '0' && v.p[i] <= '7';
            m = m * 8 + static_cast<std::uint32_t>(v.p[i] - '0');
        }
        if (!ok || (m & 0600) != 0600) {
            fail() << "bad mode '";
            writer_.quoted(v) << "' (accepted: octal permissions from 0600 to 0777, e.g. 0640)";
            return false;
        }
        spec.proxy.mode = m;
        return true;
    }

    const char* cur_;
    const char* end_;
    ChainSpec& out_;
    Diagnostic& diag_;
    const char* var_;
    Writer writer_{diag_.text, kMaxDiagnostic};
    unsigned seen_ = 0;  // keys already given in the current layer, one bit per key
};

std::span<const Parser::Key> Parser::keys() noexcept {
    static constexpr Key table[] = {
        {LayerKind::freelist, "classes", &Parser::classes},
        {LayerKind::freelist, "max", &Parser::max_bytes},
        {LayerKind::freelist, "cache", &Parser::cache},
        {LayerKind::freelist, "decay", &Parser::decay},
        {LayerKind::freelist, "check", &Parser::check},
        {LayerKind::proxy, "log", &Parser::log},
        {LayerKind::proxy, "events", &Parser::events},
        {LayerKind::proxy, "sample", &Parser::sample},
        {LayerKind::proxy, "mode", &Parser::mode},
        {LayerKind::proxy, "stacks", &Parser::stacks},
        {LayerKind::proxy, "format", &Parser::format},
    };
    static_assert(sizeof table / sizeof table[0] <= 32, "seen_ has a bit per key");
    return table;
}

}  // namespace

bool parse_chain(const char* text, ChainSpec& out, Diagnostic& diag,
                 const char* variable) noexcept {
    diag.text[0] = '\0';
    bool stats = out.stats, strict = out.strict;
    out = ChainSpec{};
    out.stats = stats;
    out.strict = strict;
    if (text == nullptr) text = "";
    if (variable == nullptr) variable = kChainVar;
    Parser parser(text, out, diag, variable);
    if (parser.chain()) return true;
    default_chain(out);
    out.stats = stats;
    out.strict = strict;
    return false;
}

}  // namespace chainalloc::config
