// ScopedHandle<T>: what Scoped::make returns, a pointer-like handle that must not outlive its
// scope. The type system keeps it in where it can (no copy, no assignment, no default, no
// `new`, and contains_scope_handle_v for scope()'s result type); every use checks the scope at
// run time too (scope_check.hpp). See scoped.hpp for the whole picture.
#pragma once

#include "allocator.hpp"
#include "scope_check.hpp"

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace chainalloc {

template <class T>
class ScopedHandle;
template <Allocator Parent>
class Scoped;

namespace detail {

// Finds a ScopedHandle anywhere in a type's template arguments (vector, optional, pair, tuple,
// array, function types, pointers ...). A handle inside a plain struct is beyond what C++20 can
// see; the runtime check catches that one.
template <class T>
struct contains_handle : std::false_type {};
template <class T>
struct contains_handle<ScopedHandle<T>> : std::true_type {};
template <class T>
struct contains_handle<T*> : contains_handle<std::remove_cv_t<T>> {};
template <class T>
struct contains_handle<T&> : contains_handle<std::remove_cv_t<T>> {};
template <class T>
struct contains_handle<T&&> : contains_handle<std::remove_cv_t<T>> {};
template <class T>
struct contains_handle<T[]> : contains_handle<std::remove_cv_t<T>> {};
template <class T, std::size_t N>
struct contains_handle<T[N]> : contains_handle<std::remove_cv_t<T>> {};
template <class R, class... Args>
struct contains_handle<R(Args...)> : contains_handle<std::remove_cv_t<R>> {};
template <class R, class... Args>
struct contains_handle<R(Args...) noexcept> : contains_handle<std::remove_cv_t<R>> {};
template <template <class...> class Tmpl, class... Args>
struct contains_handle<Tmpl<Args...>>
    : std::disjunction<contains_handle<std::remove_cv_t<Args>>...> {};
template <template <class, std::size_t> class Tmpl, class T, std::size_t N>
struct contains_handle<Tmpl<T, N>> : contains_handle<std::remove_cv_t<T>> {};

}  // namespace detail

/// True if T is, or visibly holds, a ScopedHandle.
template <class T>
inline constexpr bool contains_scope_handle_v =
    detail::contains_handle<std::remove_cvref_t<T>>::value;

/// A pointer-like handle to a value made in a Scoped; the scope owns the value. Move-only
/// (moving is how it goes into a container); empty when the make failed.
template <class T>
class ScopedHandle {
public:
    ScopedHandle() = delete;  // no outer `ScopedHandle<T> h;` waiting to be filled by a scope
    ScopedHandle(const ScopedHandle&) = delete;
    ScopedHandle& operator=(const ScopedHandle&) = delete;
    ScopedHandle& operator=(ScopedHandle&&) = delete;
    ScopedHandle(ScopedHandle&& o) noexcept
        : ptr_(std::exchange(o.ptr_, nullptr)), root_(o.root_), serial_(o.serial_) {}
    ~ScopedHandle() = default;  // the scope, not the handle, destroys the value

    static void* operator new(std::size_t) = delete;  // no escape to the heap
    static void* operator new[](std::size_t) = delete;

    /// The value, or null for an empty handle; aborts if the scope has ended.
    T* get() const noexcept {
        if (ptr_ && !root_->is_open(serial_))
            detail::scoped_abort("a handle was used after its scope ended "
                                 "(a value made in a scope must not escape it)");
        return ptr_;
    }
    T& operator*() const noexcept { return *checked(); }
    T* operator->() const noexcept { return checked(); }
    /// False for a handle whose make failed. Does not look at the scope.
    explicit operator bool() const noexcept { return ptr_ != nullptr; }

private:
    template <Allocator>
    friend class Scoped;

    ScopedHandle(T* p, const detail::ScopeNode* root, std::uint64_t serial) noexcept
        : ptr_(p), root_(root), serial_(serial) {}

    T* checked() const noexcept {
        if (!ptr_) detail::scoped_abort("dereferenced an empty handle (the make had failed)");
        return get();
    }

    T* ptr_ = nullptr;
    const detail::ScopeNode* root_ = nullptr;
    std::uint64_t serial_ = 0;
};

}  // namespace chainalloc
