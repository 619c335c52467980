// Heap-free text helpers shared by the parser and the formatter (internal to config/).
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc::config::detail {

/// A piece of the input: [p, p + n). Never owns anything.
struct Span {
    const char* p = nullptr;
    std::size_t n = 0;

    bool empty() const noexcept { return n == 0; }
    bool equals(const char* s) const noexcept {
        std::size_t i = 0;
        for (; i < n; ++i)
            if (s[i] != p[i]) return false;  // also stops at s's NUL, since p[i] != '\0'
        return s[i] == '\0';
    }
};

inline std::size_t length(const char* s) noexcept {
    std::size_t n = 0;
    while (s[n] != '\0') ++n;
    return n;
}

inline bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

/// Appends to a fixed buffer, truncating silently but counting what it would have written,
/// so callers can report the full length (snprintf-style). Keeps buf NUL-terminated.
class Writer {
public:
    Writer(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {
        if (cap_ != 0) buf_[0] = '\0';
    }

    Writer& put(char c) noexcept {
        if (len_ + 1 < cap_) {
            buf_[len_] = c;
            buf_[len_ + 1] = '\0';
        }
        ++len_;
        return *this;
    }
    Writer& operator<<(char c) noexcept { return put(c); }
    Writer& operator<<(const char* s) noexcept {
        while (*s != '\0') put(*s++);
        return *this;
    }
    Writer& operator<<(std::uint64_t v) noexcept {
        char digits[20];
        int n = 0;
        do {
            digits[n++] = char('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n > 0) put(digits[--n]);
        return *this;
    }
    Writer& operator<<(std::uint32_t v) noexcept { return *this << std::uint64_t{v}; }

    /// A piece of user input, made safe for a one-line message: control bytes become \xNN and
    /// anything past 64 bytes is cut to "...".
    Writer& quoted(Span s) noexcept {
        constexpr std::size_t kMaxShown = 64;
        constexpr char hex[] = "0123456789abcdef";
        for (std::size_t i = 0; i < s.n && i < kMaxShown; ++i) {
            auto c = static_cast<unsigned char>(s.p[i]);
            if (c < 0x20 || c == 0x7f)
                *this << "\\x" << hex[c >> 4] << hex[c & 15];
            else
                put(char(c));
        }
        if (s.n > kMaxShown) *this << "...";
        return *this;
    }

    std::size_t length() const noexcept { return len_; }

private:
    char* buf_;
    std::size_t cap_;
    std::size_t len_ = 0;
};

/// Decimal digits only, no sign, no suffix; false on anything else or above `limit`.
inline bool parse_uint(Span s, std::uint64_t limit, std::uint64_t& out) noexcept {
    if (s.empty()) return false;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < s.n; ++i) {
        if (!is_digit(s.p[i])) return false;
        std::uint64_t d = std::uint64_t(s.p[i] - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

enum class SizeResult { ok, bad, overflow };

/// Digits with an optional K/M/G/T suffix (1024-based, any case), then an optional "B" or, after
/// a suffix, "iB": 64, 64K, 64kb, 64MiB, 1T. "64B" is 64 bytes.
inline SizeResult parse_size(Span s, std::uint64_t& out) noexcept {
    std::size_t i = 0;
    std::uint64_t v = 0;
    bool overflow = false;
    while (i < s.n && is_digit(s.p[i])) {
        std::uint64_t d = std::uint64_t(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) overflow = true;
        v = v * 10 + d;
        ++i;
    }
    if (i == 0) return SizeResult::bad;
    unsigned shift = 0;
    if (i < s.n) {
        switch (lower(s.p[i])) {
            case 'k': shift = 10; break;
            case 'm': shift = 20; break;
            case 'g': shift = 30; break;
            case 't': shift = 40; break;
            default: break;
        }
        if (shift != 0) ++i;
    }
    if (shift != 0 && i + 1 < s.n && lower(s.p[i]) == 'i' && lower(s.p[i + 1]) == 'b')
        i += 2;
    else if (i < s.n && lower(s.p[i]) == 'b')
        ++i;
    if (i != s.n) return SizeResult::bad;  // only after the whole token is known to be a size
    if (overflow || (shift != 0 && v > (UINT64_MAX >> shift))) return SizeResult::overflow;
    out = v << shift;
    return SizeResult::ok;
}

}  // namespace chainalloc::config::detail
