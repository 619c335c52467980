// Erased: any block behind a table of plain functions, for chains whose shape is chosen at run
// time (the preload's, from CHAINALLOC_CHAIN). One indirect call per operation, no virtual
// call, no allocation: the table is a constant per block type, the block is the caller's.
//
// The table offers what the block has. An ability the block lacks is a null entry, never a stub
// that pretends (allocator.hpp's rule for composites): no `owns` means the block cannot tell its
// pointers from others (System), and the chain decides who owns the rest; no hook means the
// block has nothing to do at fork or thread exit.
#pragma once

#include "allocator.hpp"

#include <cstring>

namespace chainalloc {

struct ErasedOps {
    /// Required. `zero`: the usable bytes read zero (the block's allocate_zeroed, or memset).
    /// `by` names who served: a layer that only watches the rest of a chain (an observer, see
    /// below) sets it to the inner layer that did; other blocks leave it.
    Block (*allocate)(void* self, std::size_t n, std::size_t align, bool zero, unsigned& by) noexcept;
    /// Required; p is a block this one made.
    void (*deallocate)(void* self, void* p) noexcept;
    bool (*owns)(const void* self, const void* p) noexcept;
    std::size_t (*usable_size)(const void* self, const void* p) noexcept;
    /// Resizes p to n in place or by moving it within the block; nullptr when it could not
    /// (p untouched).
    void* (*reallocate)(void* self, void* p, std::size_t n) noexcept;
    /// Whether p can keep its place for n bytes (a block of size classes: n in p's class).
    bool (*fits_in_place)(const void* self, const void* p, std::size_t n) noexcept;
    /// Whether a refusal at this alignment must fail the request rather than fall through
    /// (a capped layer: what passes it must be counted).
    bool (*refusal_is_final)(const void* self, std::size_t align) noexcept;
    void (*fork_prepare)(void* self) noexcept;
    void (*fork_parent)(void* self) noexcept;
    void (*fork_child)(void* self) noexcept;
    void (*flush_thread)(void* self) noexcept;
    /// Gives free memory back to the system now; true if some went.
    bool (*trim)(void* self) noexcept;
    /// A layer that serves nothing itself but watches what the rest of the chain does (a
    /// proxy): a request marked unobserved passes it by.
    bool observer;
};

namespace detail {

template <class B>
Block erased_allocate(void* self, std::size_t n, std::size_t align, bool zero, unsigned& by) noexcept {
    B& b = *static_cast<B*>(self);
    if constexpr (requires { b.allocate(n, align, zero, by); }) {
        return b.allocate(n, align, zero, by);
    } else {
        (void)by;
        if (!zero) return b.allocate(n, align);
        return chainalloc::allocate_zeroed(b, n, align);
    }
}

template <class B>
void* erased_reallocate(void* self, void* p, std::size_t n) noexcept {
    Block block{p, n};  // the size is not read: glibc's and jemalloc's realloc know it
    return static_cast<B*>(self)->reallocate(block, n) ? block.ptr : nullptr;
}

}  // namespace detail

/// The table for block type B (a constant: one per type in the whole program).
template <Allocator B>
inline constexpr ErasedOps kErasedOps = {
    .allocate = &detail::erased_allocate<B>,
    .deallocate = [](void* self, void* p) noexcept { static_cast<B*>(self)->deallocate(Block{p, 0}); },
    .owns = [] {
        if constexpr (BlockOwner<B>)
            return +[](const void* self, const void* p) noexcept { return static_cast<const B*>(self)->owns(p); };
        else
            return static_cast<bool (*)(const void*, const void*) noexcept>(nullptr);
    }(),
    .usable_size = [] {
        if constexpr (UsableSize<B>)
            return +[](const void* self, const void* p) noexcept { return static_cast<const B*>(self)->usable_size(p); };
        else
            return static_cast<std::size_t (*)(const void*, const void*) noexcept>(nullptr);
    }(),
    .reallocate = [] {
        if constexpr (Reallocating<B>)
            return &detail::erased_reallocate<B>;
        else
            return static_cast<void* (*)(void*, void*, std::size_t) noexcept>(nullptr);
    }(),
    .fits_in_place = [] {
        if constexpr (requires(const B& b, const void* p, std::size_t n) { { b.fits_in_place(p, n) } -> std::same_as<bool>; })
            return +[](const void* self, const void* p, std::size_t n) noexcept { return static_cast<const B*>(self)->fits_in_place(p, n); };
        else
            return static_cast<bool (*)(const void*, const void*, std::size_t) noexcept>(nullptr);
    }(),
    .refusal_is_final = [] {
        if constexpr (requires(const B& b, std::size_t a) { { b.refusal_is_final(a) } -> std::same_as<bool>; })
            return +[](const void* self, std::size_t align) noexcept { return static_cast<const B*>(self)->refusal_is_final(align); };
        else
            return static_cast<bool (*)(const void*, std::size_t) noexcept>(nullptr);
    }(),
    .fork_prepare = [] {
        if constexpr (ForkAware<B>)
            return +[](void* self) noexcept { static_cast<B*>(self)->fork_prepare(); };
        else
            return static_cast<void (*)(void*) noexcept>(nullptr);
    }(),
    .fork_parent = [] {
        if constexpr (ForkAware<B>)
            return +[](void* self) noexcept { static_cast<B*>(self)->fork_parent(); };
        else
            return static_cast<void (*)(void*) noexcept>(nullptr);
    }(),
    .fork_child = [] {
        if constexpr (ForkAware<B>)
            return +[](void* self) noexcept { static_cast<B*>(self)->fork_child(); };
        else
            return static_cast<void (*)(void*) noexcept>(nullptr);
    }(),
    .flush_thread = [] {
        if constexpr (ThreadFlushing<B>)
            return +[](void* self) noexcept { static_cast<B*>(self)->flush_thread(); };
        else
            return static_cast<void (*)(void*) noexcept>(nullptr);
    }(),
    .trim = [] {
        if constexpr (requires(B& b) { { b.trim() } -> std::same_as<bool>; })
            return +[](void* self) noexcept { return static_cast<B*>(self)->trim(); };
        else
            return static_cast<bool (*)(void*) noexcept>(nullptr);
    }(),
    .observer = requires { B::kObserver; },
};

/// A block seen through its table.
struct Erased {
    const ErasedOps* ops = nullptr;
    void* self = nullptr;

    template <Allocator B>
    static Erased of(B& block) noexcept { return {&kErasedOps<B>, &block}; }
};

}  // namespace chainalloc
