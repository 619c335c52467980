// A text line under construction, for the text log's event lines and the footer: digits two at
// a time from a table, hex by nibbles of a known count, into a fixed buffer. No allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace chainalloc::preload {

struct Line {
    char text[192];
    std::size_t len = 0;

    void put(char c) noexcept { text[len++] = c; }
    void put(const char* s) noexcept {
        while (*s) text[len++] = *s++;
    }
    void dec(std::uint64_t v) noexcept {
        static constexpr char kPairs[] =
            "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
            "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
            "8081828384858687888990919293949596979899";
        char digits[20];
        char* end = digits + sizeof digits;
        char* p = end;
        while (v >= 100) {
            p -= 2;
            std::memcpy(p, kPairs + 2 * (v % 100), 2);
            v /= 100;
        }
        if (v >= 10) {
            p -= 2;
            std::memcpy(p, kPairs + 2 * v, 2);
        } else {
            *--p = static_cast<char>('0' + v);
        }
        std::memcpy(text + len, p, static_cast<std::size_t>(end - p));
        len += static_cast<std::size_t>(end - p);
    }
    void hex(std::uintptr_t v) noexcept {
        int nibbles = v ? (67 - __builtin_clzl(v)) / 4 : 1;
        for (int i = nibbles - 1; i >= 0; --i) text[len++] = "0123456789abcdef"[(v >> (4 * i)) & 15];
    }
    Line& sp() noexcept {
        put(' ');
        return *this;
    }
    /// " key=value"
    void field(const char* key, std::uint64_t v) noexcept {
        sp().put(key);
        put('=');
        dec(v);
    }
};

}  // namespace chainalloc::preload
