// Null: fails every request and owns nothing. The end of a chain that must not grow
// (`freelist(max=64M) > null`), and the neutral element of Fallback.
#pragma once

#include "allocator.hpp"

namespace chainalloc {

struct Null {
    static constexpr std::size_t alignment = 64 * 1024;  // any request it "serves" is aligned

    Block allocate(std::size_t, std::size_t) noexcept { return {}; }
    // Only the empty block can come from here; giving it back is harmless.
    void deallocate(Block) noexcept {}
    bool reallocate(Block& b, std::size_t n) noexcept { return n == 0 && !b.ptr; }
    bool owns(const void*) const noexcept { return false; }
    void deallocate_all() noexcept {}
};

}  // namespace chainalloc
