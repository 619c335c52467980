// StlAllocator: a std::allocator-compatible handle to a chainalloc allocator, for containers
// that take an allocator type (std::vector<int, StlAllocator<int, MyChain>>). It holds a
// pointer: the allocator must outlive every container that uses it.
//
// Propagation: the memory a container holds can only go back to the allocator that made it,
// so whatever carries the memory carries the allocator too —
//   move assignment: true  (the buffer moves over in O(1), with its allocator)
//   swap:            true  (buffers trade places, so allocators must as well; with false,
//                           swapping containers over different allocators would be undefined)
//   copy assignment: false (elements are copied into memory from the destination's own
//                           allocator; a container stays on the allocator it was built with,
//                           as with std::allocator and pmr)
// Two StlAllocators are equal when they point at the same allocator object, or always when A
// is an empty type (System, Null): with no per-object state, any instance frees another's
// memory. Only such stateless allocators can be default-constructed (a shared instance is
// used), which some standard members need (basic_string::substr builds `Allocator()`).
#pragma once

#include "allocator.hpp"

#include <concepts>
#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

namespace chainalloc {

template <class T, Allocator A>
class StlAllocator {
public:
    using value_type = T;
    using propagate_on_container_copy_assignment = std::false_type;
    using propagate_on_container_move_assignment = std::true_type;
    using propagate_on_container_swap = std::true_type;
    using is_always_equal = std::bool_constant<std::is_empty_v<A>>;

    explicit StlAllocator(A& a) noexcept : a_(&a) {}

    StlAllocator() noexcept
        requires(std::is_empty_v<A> && std::default_initializable<A>)
        : a_(&shared_instance()) {}

    template <class U>
    StlAllocator(const StlAllocator<U, A>& other) noexcept : a_(&other.allocator()) {}

    /// Throws std::bad_array_new_length (a std::bad_alloc) when n * sizeof(T) overflows, and
    /// std::bad_alloc when the allocator fails: containers expect exceptions here.
    [[nodiscard]] T* allocate(std::size_t n) {
        if (n > std::numeric_limits<std::size_t>::max() / sizeof(T))
            throw std::bad_array_new_length();
        Block b = a_->allocate(n * sizeof(T), alignof(T));
        if (!b) throw std::bad_alloc();
        return static_cast<T*>(b.ptr);
    }

    /// n is what allocate was given, so n * sizeof(T) is the requested size: a valid size
    /// for deallocate.
    void deallocate(T* p, std::size_t n) noexcept { a_->deallocate(Block{p, n * sizeof(T)}); }

    A& allocator() const noexcept { return *a_; }

    template <class U>
    bool operator==(const StlAllocator<U, A>& other) const noexcept {
        return is_always_equal::value || a_ == &other.allocator();
    }

private:
    static A& shared_instance() noexcept {
        static A instance;
        return instance;
    }

    A* a_;
};

}  // namespace chainalloc
