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
// (never stubbed to fail):
//
//   bool        owns(const void* p) const     BlockOwner: precise and cheap (address range)
//   bool        reallocate(Block& b, std::size_t n)  in place or moved; false leaves b untouched
//   bool        expand(Block& b, std::size_t n)      in place only; false leaves b untouched
//   void        deallocate_all()               gives back every block at once
//   std::size_t good_size(std::size_t n) const what allocate(n, ...) would really hand out
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
