// Owned: typed allocation on any chainalloc allocator. make_owned<T>(a, args...) builds a T in
// a block from `a` and returns a move-only box that destroys the T and gives the block back to
// `a` when dropped (the seed's `alloc.allocate(value)`); allocate_array<T>(a, n) does the same
// for n value-initialized Ts. The allocator must outlive the box.
//
// Failure follows the library: an allocator that cannot serve gives an empty box, not an
// exception. A constructor that throws gets its block given back, and the exception goes on.
#pragma once

#include "allocator.hpp"

#include <cstddef>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

namespace chainalloc {

template <class T, Allocator A>
class Owned {
    static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T>);

public:
    Owned() noexcept = default;  // empty
    Owned(Owned&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), a_(o.a_) {}
    Owned& operator=(Owned&& o) noexcept {
        if (this != &o) {
            reset();
            ptr_ = std::exchange(o.ptr_, nullptr);
            a_ = o.a_;
        }
        return *this;
    }
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() { reset(); }

    T* get() const noexcept { return ptr_; }
    T& operator*() const noexcept { return *ptr_; }
    T* operator->() const noexcept { return ptr_; }
    explicit operator bool() const noexcept { return ptr_ != nullptr; }
    A* allocator() const noexcept { return a_; }

    /// Destroys the value and gives its block back; the box is empty after.
    void reset() noexcept {
        if (!ptr_) return;
        T* p = std::exchange(ptr_, nullptr);
        std::destroy_at(p);
        a_->deallocate(Block{p, sizeof(T)});
    }

    /// Gives up ownership: the caller must destroy the T and deallocate Block{p, sizeof(T)}
    /// on allocator() itself.
    [[nodiscard]] T* release() noexcept { return std::exchange(ptr_, nullptr); }

private:
    template <class U, Allocator B, class... Args>
    friend Owned<U, B> make_owned(B&, Args&&...);

    Owned(T* p, A* a) noexcept : ptr_(p), a_(a) {}

    T* ptr_ = nullptr;
    A* a_ = nullptr;
};

/// n value-initialized Ts in one block; destroyed last to first.
template <class T, Allocator A>
class Owned<T[], A> {
public:
    Owned() noexcept = default;
    Owned(Owned&& o) noexcept
        : ptr_(std::exchange(o.ptr_, nullptr)), n_(std::exchange(o.n_, 0)), a_(o.a_) {}
    Owned& operator=(Owned&& o) noexcept {
        if (this != &o) {
            reset();
            ptr_ = std::exchange(o.ptr_, nullptr);
            n_ = std::exchange(o.n_, 0);
            a_ = o.a_;
        }
        return *this;
    }
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() { reset(); }

    T* get() const noexcept { return ptr_; }
    std::size_t size() const noexcept { return n_; }
    T& operator[](std::size_t i) const noexcept { return ptr_[i]; }
    std::span<T> span() const noexcept { return {ptr_, n_}; }
    T* begin() const noexcept { return ptr_; }
    T* end() const noexcept { return ptr_ + n_; }
    explicit operator bool() const noexcept { return ptr_ != nullptr; }
    A* allocator() const noexcept { return a_; }

    void reset() noexcept {
        if (!ptr_) return;
        T* p = std::exchange(ptr_, nullptr);
        std::size_t n = std::exchange(n_, 0);
        for (std::size_t i = n; i-- > 0;) std::destroy_at(p + i);
        a_->deallocate(Block{p, n * sizeof(T)});
    }

private:
    template <class U, Allocator B>
    friend Owned<U[], B> allocate_array(B&, std::size_t);

    Owned(T* p, std::size_t n, A* a) noexcept : ptr_(p), n_(n), a_(a) {}

    T* ptr_ = nullptr;
    std::size_t n_ = 0;
    A* a_ = nullptr;
};

/// A T built from args in a block from `a`; empty if `a` fails. If T's constructor throws, the
/// block goes back to `a` and the exception propagates.
template <class T, Allocator A, class... Args>
Owned<T, A> make_owned(A& a, Args&&... args) {
    Block b = a.allocate(sizeof(T), alignof(T));
    if (!b) return {};
    try {
        T* p = ::new (b.ptr) T(std::forward<Args>(args)...);
        return Owned<T, A>(p, &a);
    } catch (...) {
        a.deallocate(Block{b.ptr, sizeof(T)});
        throw;
    }
}

/// n value-initialized Ts; empty if n * sizeof(T) overflows or `a` fails. If a constructor
/// throws, the elements built so far are destroyed, the block goes back, and the exception
/// propagates.
template <class T, Allocator A>
Owned<T[], A> allocate_array(A& a, std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) return {};
    Block b = a.allocate(n * sizeof(T), alignof(T));
    if (!b) return {};
    try {
        T* p = static_cast<T*>(b.ptr);
        std::uninitialized_value_construct_n(p, n);  // destroys what it built if one throws
        return Owned<T[], A>(p, n, &a);
    } catch (...) {
        a.deallocate(Block{b.ptr, n * sizeof(T)});
        throw;
    }
}

}  // namespace chainalloc
