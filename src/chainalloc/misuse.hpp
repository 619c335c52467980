// Misuse of a free-list layer's memory, found by its checks: one line on stderr naming
// chainalloc, the pointer and the class, then abort. Written with write(2) and no allocation:
// the heap is what just proved unreliable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <unistd.h>

namespace chainalloc {

enum class Misuse { double_free, interior_free, not_in_use, corrupted_list };

namespace misuse_detail {
inline char* put(char* at, const char* s) noexcept {
    while (*s) *at++ = *s++;
    return at;
}
inline char* put_hex(char* at, std::uintptr_t v) noexcept {
    at = put(at, "0x");
    int shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) *at++ = "0123456789abcdef"[(v >> shift) & 0xf];
    return at;
}
inline char* put_dec(char* at, std::size_t v) noexcept {
    char digits[24];
    int n = 0;
    do digits[n++] = static_cast<char>('0' + v % 10);
    while ((v /= 10) != 0);
    while (n) *at++ = digits[--n];
    return at;
}
}  // namespace misuse_detail

/// Reports and aborts. `block` is the class's block size (0 when unknown).
[[noreturn, gnu::cold, gnu::noinline]] inline void report_misuse(Misuse what, const void* p,
                                                                 std::size_t block) noexcept {
    using namespace misuse_detail;
    char line[192];
    char* at = put(line, "chainalloc: ");
    auto address = reinterpret_cast<std::uintptr_t>(p);
    switch (what) {
        case Misuse::double_free:
            at = put_hex(put(at, "double free of "), address);
            break;
        case Misuse::interior_free:
            at = put(put_hex(put(at, "free of "), address), ", which is not the start of a block");
            break;
        case Misuse::not_in_use:
            at = put(put_hex(put(at, "free of "), address), ", which is in no block in use");
            break;
        case Misuse::corrupted_list:
            at = put_hex(put(at, "free list corrupted at "), address);
            break;
    }
    if (block) at = put(put_dec(put(at, " (class "), block), " B)");
    if (what == Misuse::corrupted_list) at = put(at, ": a freed block was written to");
    at = put(at, "\n");
    [[maybe_unused]] auto r = ::write(STDERR_FILENO, line, static_cast<std::size_t>(at - line));
    std::abort();
}

}  // namespace chainalloc
