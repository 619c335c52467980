// Scoped: a region of `capacity` bytes taken from Parent once, handed out by bumping a pointer,
// with nested scopes for temporary allocations in a loop:
//
//   Scoped<> arena(1024);
//   arena.scope([](auto& inner) {
//       auto a = inner.make<Widget>(1);   // a handle: *a, a->f(), a.get(), if (a)
//       ...
//   });                                   // the Widgets are destroyed here, newest first,
//                                         // and their memory is free for the next scope
//
// While a scope is open its outer Scoped refuses every request (an empty Block, an empty
// handle), so the inner one may use all the space that is left. Destructor records live in
// the region itself: one 24-byte record per run of same-typed values made back to back.
//
// A handle must not outlive its scope. Where the type system can see it this is a compile
// error: handles are neither copyable, assignable nor default-constructible, cannot be put on
// the heap with `new`, and `scope(f)` rejects an `f` whose result type holds a handle. Where it
// cannot (a handle moved into outer storage), every use of a handle checks a generation
// counter and aborts with a message once its scope has ended, in every build type. Using a
// handle after the root Scoped itself is gone is not detected (its memory is gone too).
//
// Values made on the root live until the root is destroyed or deallocate_all() is called.
// Destructors of made values must not throw. Not thread-safe.
//
// Its parts, one file each: scoped_handle.hpp (the handle and the compile-time checks),
// scope_check.hpp (the run-time check), scoped_records.hpp (destructor records). This header
// includes them all. Not built on Region (region.hpp): a Scoped's blocks have no header (values
// and records sit back to back), an inner scope bumps in its outer's free space, and the most
// recent block can be given back; a Region has none of the three.
#pragma once

#include "allocator.hpp"
#include "scope_check.hpp"
#include "scoped_handle.hpp"
#include "scoped_records.hpp"
#include "system.hpp"

#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace chainalloc {

template <Allocator Parent = System>
class Scoped {
    // A Parent given as a reference (Scoped<FreeList&>) is held as a reference.
    using Held = std::conditional_t<std::is_reference_v<Parent>,
                                    std::reference_wrapper<std::remove_reference_t<Parent>>,
                                    Parent>;

public:
    template <class T>
    using handle = ScopedHandle<T>;

    static constexpr std::size_t alignment = kMinAlign;

    /// Takes `capacity` bytes from Parent. If Parent refuses, the Scoped is empty (capacity()
    /// is 0) and fails every request: construction is not where failure becomes an exception.
    explicit Scoped(std::size_t capacity)
        requires std::default_initializable<Held>
        : Scoped(capacity, Held{}) {}

    Scoped(std::size_t capacity, Held parent) : parent_(std::move(parent)) {
        node_.root = &node_;
        node_.innermost = &node_;
        node_.serial = node_.fresh_serial();
        region_ = this->parent().allocate(capacity, kMinAlign);
        if (region_) {
            begin_ = cur_ = made_end_ = static_cast<char*>(region_.ptr);
            end_ = begin_ + capacity;
        }
    }

    Scoped(const Scoped&) = delete;  // handles and inner scopes point at this object
    Scoped& operator=(const Scoped&) = delete;

    ~Scoped() {
        destroy_made();
        if (outer_) {
            outer_->inner_open_ = false;
            node_.root->innermost = &outer_->node_;
        } else if (region_) {
            Block b = region_;
            b.size = static_cast<std::size_t>(end_ - begin_);  // the size we asked for
            parent().deallocate(b);
        }
    }

    /// Bump allocation; empty while an inner scope is open or when the space is used up.
    /// A request for 0 bytes takes 1, so every block has its own address.
    Block allocate(std::size_t n, std::size_t align = kMinAlign) noexcept {
        if (inner_open_ || !begin_) return {};
        if (n == 0) n = 1;
        char* p = bump_to(cur_, align);
        if (!p || static_cast<std::size_t>(end_ - p) < n) return {};
        cur_ = p + n;
        return {p, n};
    }

    /// Rolls the bump back if b is the most recent block (ends where the free space starts);
    /// any other block is reclaimed with its scope. Never reaches below a made value.
    void deallocate(Block b) noexcept {
        char* p = static_cast<char*>(b.ptr);
        if (inner_open_ || !p || p < made_end_ || p > cur_) return;
        if (static_cast<std::size_t>(cur_ - p) == b.size) cur_ = p;
    }

    /// True for any address in this scope's part of the region.
    bool owns(const void* p) const noexcept {
        auto a = reinterpret_cast<std::uintptr_t>(p);
        return a >= reinterpret_cast<std::uintptr_t>(begin_) &&
               a < reinterpret_cast<std::uintptr_t>(end_);
    }

    /// Destroys every value made here (newest first), frees all the space and invalidates every
    /// handle made here. Aborts if called while an inner scope is open (the inner one is
    /// using that space).
    void deallocate_all() noexcept {
        if (inner_open_)
            detail::scoped_abort("deallocate_all() called while an inner scope is open");
        destroy_made();
        cur_ = made_end_ = begin_;
        node_.serial = node_.fresh_serial();
    }

    /// Runs f(Scoped& inner) with an inner scope over the space that is left; every value made
    /// in it is destroyed when f returns or throws. Returns true (f returns void) or f's result
    /// in an optional; false / nullopt without calling f if this scope is itself refusing
    /// requests because one of its inner scopes is open.
    template <class F>
    auto scope(F&& f) {
        using R = std::invoke_result_t<F&, Scoped&>;
        static_assert(!contains_scope_handle_v<R>,
                      "chainalloc::Scoped::scope: the function returns a ScopedHandle (or a type "
                      "holding one); a value made in a scope must not escape it");
        static_assert(!std::is_reference_v<R>,
                      "chainalloc::Scoped::scope: the function returns a reference, which could "
                      "point into the scope; return a value");
        if constexpr (std::is_void_v<R>) {
            if (inner_open_) return false;
            Scoped inner(*this, InnerTag{});
            std::invoke(f, inner);
            return true;
        } else {
            if (inner_open_) return std::optional<R>{};
            Scoped inner(*this, InnerTag{});
            return std::optional<R>(std::invoke(f, inner));
        }
    }

    /// Makes a T here. The handle is empty if there is no room (or an inner scope is open);
    /// if T's constructor throws, the space is taken back and the exception propagates.
    template <class T, class... Args>
    ScopedHandle<T> make(Args&&... args) {
        static_assert(std::is_object_v<T> && !std::is_array_v<T>,
                      "chainalloc::Scoped::make makes one object");
        static_assert(std::is_nothrow_destructible_v<T>,
                      "chainalloc::Scoped::make: T's destructor must not throw");
        if (inner_open_ || !begin_) return empty<T>();
        char* at;
        Record* rec = nullptr;
        if constexpr (std::is_trivially_destructible_v<T>) {
            at = bump_to(cur_, alignof(T));
            if (!at || static_cast<std::size_t>(end_ - at) < sizeof(T)) return empty<T>();
        } else if (records_.extends<T>(cur_, made_end_)) {
            at = cur_;  // right after the last value of the same type: one record serves both
            if (static_cast<std::size_t>(end_ - at) < sizeof(T)) return empty<T>();
        } else {
            char* r = bump_to(cur_, alignof(Record));
            at = r ? Records::first_of<T>(reinterpret_cast<Record*>(r)) : nullptr;
            if (!at || at > end_ || static_cast<std::size_t>(end_ - at) < sizeof(T))
                return empty<T>();
            rec = reinterpret_cast<Record*>(r);
        }
        T* obj = ::new (static_cast<void*>(at)) T(std::forward<Args>(args)...);
        // Committed only now, so a throwing constructor leaves everything as it was.
        if constexpr (!std::is_trivially_destructible_v<T>) {
            if (rec)
                records_.start<T>(rec);
            else
                records_.extend();
        }
        cur_ = made_end_ = at + sizeof(T);
        return ScopedHandle<T>(obj, node_.root, node_.serial);
    }

    std::size_t capacity() const noexcept { return static_cast<std::size_t>(end_ - begin_); }
    std::size_t used() const noexcept { return static_cast<std::size_t>(cur_ - begin_); }
    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - cur_); }
    /// True while an inner scope is open and this one refuses requests.
    bool inner_open() const noexcept { return inner_open_; }

private:
    using Records = detail::DestructorRecords;
    using Record = Records::Record;

    // The inner scope opened by scope(): it takes over the outer one's free space.
    struct InnerTag {};
    Scoped(Scoped& outer, InnerTag) noexcept
        : outer_(&outer), begin_(outer.cur_), cur_(outer.cur_), made_end_(outer.cur_),
          end_(outer.end_) {
        node_.outer = &outer.node_;
        node_.root = outer.node_.root;
        node_.serial = node_.fresh_serial();
        node_.root->innermost = &node_;
        outer.inner_open_ = true;
    }

    auto& parent() noexcept { return static_cast<std::remove_reference_t<Parent>&>(*parent_); }

    // p rounded up to align, or null if that runs past the end.
    char* bump_to(char* p, std::size_t align) const noexcept {
        auto a = reinterpret_cast<std::uintptr_t>(p);
        auto up = align_up(a, align);
        if (up < a || up > reinterpret_cast<std::uintptr_t>(end_)) return nullptr;
        return p + (up - a);
    }

    template <class T>
    ScopedHandle<T> empty() const noexcept {
        return ScopedHandle<T>(nullptr, node_.root, node_.serial);
    }

    void destroy_made() noexcept { records_.destroy_all(); }

    detail::ScopeNode node_;
    std::optional<Held> parent_;  // the root's; inner scopes have none
    Scoped* outer_ = nullptr;
    Block region_;                // the root's block from Parent
    char* begin_ = nullptr;
    char* cur_ = nullptr;         // start of the free space
    char* made_end_ = nullptr;    // end of the newest made value: deallocate stops here
    char* end_ = nullptr;
    Records records_;             // destructors of the values made here
    bool inner_open_ = false;
};

}  // namespace chainalloc
