// The default size classes, defined once: SizeClasses::defaults() and the configuration's
// default `freelist` layer (config/defaults.cpp) both take this table. 16..128 in steps of 16,
// then four classes per doubling up to 32 KiB: 40 classes whose rounding waste stays below 25%
// (the usual size-class shape).
//
// A constant table, computed at compile time: the configuration code runs inside the first
// malloc and must not touch the heap or throw (config/check_no_heap.py), and this header needs
// nothing but <cstdint>.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc {

struct DefaultClasses {
    static constexpr std::size_t kCount = 8 + 4 * 8;  // 16..128, then 8 doublings 128..32K
    std::uint32_t sizes[kCount] = {};
};

constexpr DefaultClasses make_default_classes() noexcept {
    DefaultClasses t;
    std::size_t n = 0;
    for (std::uint32_t size = 16; size <= 128; size += 16) t.sizes[n++] = size;
    for (std::uint32_t base = 128; base < 32768; base *= 2)
        for (std::uint32_t quarter = 1; quarter <= 4; ++quarter) t.sizes[n++] = base + quarter * (base / 4);
    return t;
}

inline constexpr DefaultClasses kDefaultClasses = make_default_classes();

static_assert(kDefaultClasses.sizes[DefaultClasses::kCount - 1] == 32768, "the table ends at 32 KiB");
static_assert(kDefaultClasses.sizes[8] == 160 && kDefaultClasses.sizes[7] == 128);

}  // namespace chainalloc
