// chainalloc: the interface every block speaks.
//
// Required of an Allocator (the whole contract fits here, as in Phobos' package.d):
//
//   Block allocate(std::size_t size, std::size_t align)   empty Block on failure, never throws;
//                                                          align is a power of two; size may be 0
//   void  deallocate(Block b)                              b as returned by allocate/reallocate
//                                                          (b.size may be anything in
//                                                          [requested size, returned size])
//
// Optional abilities, detected with concepts; a composite offers one only when its parts do
// (never stubbed to fail). Answers from the owner (usable_size, deallocate_all) need every part;
// hooks (fork, flush_thread) and allocate_zeroed need one part, since a part without them has
// no lock or cache to mind, or zeroes by memset (see fallback.hpp):
//
//   bool        owns(const void* p) const     BlockOwner: precise and cheap (address range)
//   bool        reallocate(Block& b, std::size_t n)  in place or moved; false leaves b untouched
//   bool        expand(Block& b, std::size_t n)      in place only; false leaves b untouched
//   void        deallocate_all()               gives back every block at once
//   std::size_t good_size(std::size_t n) const what allocate(n, ...) would really hand out
//   std::size_t usable_size(const void* p) const  UsableSize: the usable bytes of a block it
//                                                 owns (p as allocate returned it)
//   Block       allocate_zeroed(std::size_t n, std::size_t align)  AllocatingZeroed: a block
//                                                 whose usable bytes all read zero, made
//                                                 cheaper than allocate + memset (calloc)
//   bool        try_deallocate(Block b)        TryDeallocating: deallocates b if this allocator
//                                              owns it, in one step; false (and nothing done)
//                                              otherwise, so a chain routes with one call a layer
//   void        fork_prepare() / fork_parent() / fork_child()  ForkAware: pthread_atfork's three
//                                              handlers (locks held across fork, released after)
//   void        flush_thread()                 ThreadFlushing: the calling thread is ending;
//                                              give its cached blocks back
//
// Generic helpers below use the ability where there is one and the plain contract otherwise:
// reallocate(a, b, n), allocate_zeroed(a, n, align), try_deallocate(a, b) (for a BlockOwner).
//
// Blocks are single-threaded unless their header says otherwise.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace chainalloc {

/// What an allocation returns: the memory and its usable size (which may exceed the request).
struct Block {
    void* ptr = nullptr;
    std::size_t size = 0;

    explicit operator bool() const noexcept { return ptr != nullptr; }
    friend bool operator==(const Block&, const Block&) = default;
};

/// The alignment every allocator here gives without being asked (malloc's: 16 on x86-64).
inline constexpr std::size_t kMinAlign = alignof(std::max_align_t);

constexpr bool is_pow2(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

/// Rounds n up to a multiple of align (a power of two); wraps to 0 on overflow, which callers
/// check for by comparing against n.
constexpr std::size_t align_up(std::size_t n, std::size_t align) noexcept {
    return (n + align - 1) & ~(align - 1);
}

inline bool is_aligned(const void* p, std::size_t align) noexcept {
    return (reinterpret_cast<std::uintptr_t>(p) & (align - 1)) == 0;
}

template <class A>
concept Allocator = requires(A& a, Block b, std::size_t n) {
    { a.allocate(n, n) } -> std::same_as<Block>;
    { a.deallocate(b) } -> std::same_as<void>;
};

template <class A>
concept BlockOwner = Allocator<A> && requires(const A& a, const void* p) {
    { a.owns(p) } -> std::same_as<bool>;
};

template <class A>
concept Reallocating = Allocator<A> && requires(A& a, Block& b, std::size_t n) {
    { a.reallocate(b, n) } -> std::same_as<bool>;
};

template <class A>
concept Expanding = Allocator<A> && requires(A& a, Block& b, std::size_t n) {
    { a.expand(b, n) } -> std::same_as<bool>;
};

template <class A>
concept DeallocatingAll = Allocator<A> && requires(A& a) {
    { a.deallocate_all() } -> std::same_as<void>;
};

template <class A>
concept GoodSize = Allocator<A> && requires(const A& a, std::size_t n) {
    { a.good_size(n) } -> std::same_as<std::size_t>;
};

template <class A>
concept UsableSize = Allocator<A> && requires(const A& a, const void* p) {
    { a.usable_size(p) } -> std::same_as<std::size_t>;
};

template <class A>
concept AllocatingZeroed = Allocator<A> && requires(A& a, std::size_t n) {
    { a.allocate_zeroed(n, n) } -> std::same_as<Block>;
};

template <class A>
concept TryDeallocating = Allocator<A> && requires(A& a, Block b) {
    { a.try_deallocate(b) } -> std::same_as<bool>;
};

template <class A>
concept ForkAware = Allocator<A> && requires(A& a) {
    { a.fork_prepare() } -> std::same_as<void>;
    { a.fork_parent() } -> std::same_as<void>;
    { a.fork_child() } -> std::same_as<void>;
};

template <class A>
concept ThreadFlushing = Allocator<A> && requires(A& a) {
    { a.flush_thread() } -> std::same_as<void>;
};

/// A zeroed block: the allocator's own way where it has one (calloc, MALLOCX_ZERO, fresh pages),
/// otherwise allocate and clear every usable byte (not only the n asked for, so that a later
/// in-place growth finds zeros too, as with calloc).
template <Allocator A>
Block allocate_zeroed(A& a, std::size_t n, std::size_t align = kMinAlign) noexcept {
    if constexpr (AllocatingZeroed<A>) {
        return a.allocate_zeroed(n, align);
    } else {
        Block b = a.allocate(n, align);
        if (b) std::memset(b.ptr, 0, b.size);
        return b;
    }
}

/// Deallocates b if a owns it: a's own try_deallocate where it has one, owns + deallocate
/// otherwise. An empty block is nobody's (false).
template <Allocator A>
    requires TryDeallocating<A> || BlockOwner<A>
bool try_deallocate(A& a, Block b) noexcept {
    if constexpr (TryDeallocating<A>) {
        return a.try_deallocate(b);
    } else {
        if (!b.ptr || !a.owns(b.ptr)) return false;
        a.deallocate(b);
        return true;
    }
}

// For composites whose abilities are the union of their parts' (fork hooks, flush_thread): a
// part without the hook keeps no lock and no per-thread cache between calls, so for it there is
// nothing to do. A composite offers the hook only when at least one part has it.
template <class A>
void fork_prepare_if_any(A& a) noexcept {
    if constexpr (ForkAware<A>) a.fork_prepare();
}
template <class A>
void fork_parent_if_any(A& a) noexcept {
    if constexpr (ForkAware<A>) a.fork_parent();
}
template <class A>
void fork_child_if_any(A& a) noexcept {
    if constexpr (ForkAware<A>) a.fork_child();
}
template <class A>
void flush_thread_if_any(A& a) noexcept {
    if constexpr (ThreadFlushing<A>) a.flush_thread();
}

/// Moves b to a new block of n bytes from a, copying what fits; the generic fallback of
/// reallocate for allocators that cannot do better. False (and b untouched) on failure.
template <Allocator A>
bool reallocate_by_copy(A& a, Block& b, std::size_t n, std::size_t align = kMinAlign) {
    Block fresh = a.allocate(n, align);
    if (!fresh) return false;
    if (b.ptr) std::memcpy(fresh.ptr, b.ptr, std::min(b.size, n));
    if (b.ptr) a.deallocate(b);
    b = fresh;
    return true;
}

/// Reallocates with the allocator's own reallocate where it has one, by copy otherwise.
template <Allocator A>
bool reallocate(A& a, Block& b, std::size_t n) {
    if constexpr (Reallocating<A>)
        return a.reallocate(b, n);
    else if constexpr (Expanding<A>)
        return a.expand(b, n) || reallocate_by_copy(a, b, n);
    else
        return reallocate_by_copy(a, b, n);
}

}  // namespace chainalloc
