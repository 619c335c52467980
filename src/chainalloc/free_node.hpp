// FreeNode: a free block of a free-list layer, and the protection of the lists it is on.
//
// Word 0 links to the next free block, mangled: stored = next ^ secret ^ (the node's own
// address). The secret is per process, so a use-after-free write cannot aim the list at an
// address of its choosing; its low bits are odd, so any plain 16-aligned pointer (or zero)
// written over a link decodes to a misaligned one and is caught. A decoded link is checked
// before it is followed: 16-aligned and inside a segment of ours (segment_map.hpp), so a
// corrupted list never turns into an address outside the layer.
//
// Word 1 holds the free mark, a per-process random word, while the block is free; allocation
// clears it. Freeing a block that carries the mark is a double free; popping one that does not
// means the link that led to it was overwritten. Both end in report_misuse (misuse.hpp).
// Blocks are at least 16 bytes, so both words always fit.
#pragma once

#include "misuse.hpp"
#include "page_heap.hpp"

#include <cstdint>

#include <sys/auxv.h>

namespace chainalloc {

struct FreeNode {
    std::uintptr_t link;
    std::uintptr_t mark;
};

struct ListGuard {
    static inline constinit std::uintptr_t secret = 0x9;
    static inline constinit std::uintptr_t free_mark = 0x5a17'c0de'f7ee'b10c;

    /// Draws the secrets, once per process, before any list exists (the kernel's AT_RANDOM
    /// bytes, mixed with where this library was loaded).
    static void init() noexcept {
        static constinit bool done = false;
        if (done) return;
        done = true;
        std::uint64_t r[2] = {0x243f6a8885a308d3, 0x13198a2e03707344};
        if (auto* bytes = reinterpret_cast<const unsigned char*>(getauxval(AT_RANDOM)))
            __builtin_memcpy(r, bytes, sizeof r);
        auto here = reinterpret_cast<std::uintptr_t>(&done);
        secret = ((r[0] ^ (here * 0x9e3779b97f4a7c15)) & ~std::uintptr_t{0xf}) | 0x9;
        free_mark = (r[1] ^ (here >> 4)) | 1;
    }

    static std::uintptr_t encode(const FreeNode* node, const FreeNode* next) noexcept {
        return reinterpret_cast<std::uintptr_t>(next) ^ secret ^ reinterpret_cast<std::uintptr_t>(node);
    }
};

/// Links node to next (either may be the list's end, nullptr).
inline void set_next(FreeNode* node, FreeNode* next) noexcept { node->link = ListGuard::encode(node, next); }

/// Reports misuse of a block in a segment of ours; the class comes from the span's header.
[[noreturn, gnu::cold, gnu::noinline]] inline void report_block_misuse(Misuse what, const void* p) noexcept {
    Slice* slice = slice_at(p);
    report_misuse(what, p, slice ? slice->block_size : 0);
}

/// The block after node into `next`; false when the link is not sound (misaligned, or outside
/// every segment of ours). Makes no call: fast paths use it and leave the report to their
/// slow path, which looks again with next_of.
inline bool try_next(const FreeNode* node, FreeNode*& next) noexcept {
    std::uintptr_t n = node->link ^ ListGuard::secret ^ reinterpret_cast<std::uintptr_t>(node);
    next = reinterpret_cast<FreeNode*>(n);
    return n == 0 || ((n & 0xf) == 0 && g_segment_map.contains(next));
}

/// The block after node, checked before anyone follows it.
inline FreeNode* next_of(const FreeNode* node) noexcept {
    FreeNode* next;
    if (!try_next(node, next)) [[unlikely]]
        report_block_misuse(Misuse::corrupted_list, node);
    return next;
}

/// A block becomes free. If it already looks free, `is_free(node)` decides: it searches the
/// lists the block could be on, and a hit is a double free. A miss is a live block whose word 1
/// happens to hold the mark (a copy of freed memory, or a fuzzer that learned the value from
/// our comparisons): it is freed as usual, as glibc's tcache does with its key.
template <class IsFree>
inline FreeNode* mark_free(void* p, IsFree&& is_free) noexcept {
    auto* node = static_cast<FreeNode*>(p);
    if (node->mark == ListGuard::free_mark && is_free(node)) [[unlikely]]
        report_block_misuse(Misuse::double_free, p);
    node->mark = ListGuard::free_mark;
    return node;
}

/// Whether `list` (n blocks at most, or to its end) holds `node`.
inline bool list_holds(const FreeNode* list, const FreeNode* node, std::size_t n = SIZE_MAX) noexcept {
    for (; list && n; --n) {
        if (list == node) return true;
        FreeNode* next;
        if (!try_next(list, next)) return false;  // a broken list: the next pop reports it
        list = next;
    }
    return false;
}

/// A block reached through a list must still be marked free, else the link that led here was
/// overwritten.
inline FreeNode* expect_free(FreeNode* node) noexcept {
    if (node->mark != ListGuard::free_mark) [[unlikely]]
        report_block_misuse(Misuse::corrupted_list, node);
    return node;
}

/// A block taken off a list to be handed out: still free (expect_free), and it stops looking free.
inline void* mark_used(FreeNode* node) noexcept {
    expect_free(node)->mark = 0;
    return node;
}

}  // namespace chainalloc
