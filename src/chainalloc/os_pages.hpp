// Memory straight from the system, for the blocks that hold their own metadata (page heaps,
// the jemalloc terminal's arenas). No locks here: callers map and unmap with theirs released.
#pragma once

#include "allocator.hpp"

#include <cstdint>

#include <sys/mman.h>

namespace chainalloc::os_pages {

/// size bytes, read-write, at a multiple of align (a power of two >= the page size), or
/// nullptr. Tries `hint` first (a mapping placed right there needs no trimming), then maps
/// size + align and trims both ends. Virtual size only: pages cost memory when first touched.
inline void* map_aligned(std::size_t size, std::size_t align, void* hint = nullptr) noexcept {
    constexpr int kProt = PROT_READ | PROT_WRITE;
    constexpr int kFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    if (hint) {
        void* p = mmap(hint, size, kProt, kFlags, -1, 0);
        if (p != MAP_FAILED && (reinterpret_cast<std::uintptr_t>(p) & (align - 1)) == 0) return p;
        if (p != MAP_FAILED) munmap(p, size);
    }
    std::size_t total = size + align;
    if (total < size) return nullptr;
    void* raw = mmap(nullptr, total, kProt, kFlags, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    auto start = reinterpret_cast<std::uintptr_t>(raw);
    std::uintptr_t base = align_up(start, align);
    if (base > start) munmap(raw, base - start);
    std::uintptr_t end = start + total;
    if (end > base + size) munmap(reinterpret_cast<void*>(base + size), end - (base + size));
    return reinterpret_cast<void*>(base);
}

}  // namespace chainalloc::os_pages
