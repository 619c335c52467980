// Fallback<Primary, Secondary>: Primary first, Secondary when Primary fails. A block goes back
// to whichever of the two owns it, so Primary must be a BlockOwner; Secondary is the default
// owner of everything else. Reallocation may move a block from one to the other.
#pragma once

#include "allocator.hpp"

#include <utility>

namespace chainalloc {

template <BlockOwner Primary, Allocator Secondary>
class Fallback {
public:
    Fallback() = default;
    Fallback(Primary p, Secondary s) : primary_(std::move(p)), secondary_(std::move(s)) {}

    Block allocate(std::size_t n, std::size_t align) noexcept {
        if (Block b = primary_.allocate(n, align)) return b;
        return secondary_.allocate(n, align);
    }

    void deallocate(Block b) noexcept {
        if (!b.ptr) return;
        if (primary_.owns(b.ptr))
            primary_.deallocate(b);
        else
            secondary_.deallocate(b);
    }

    bool owns(const void* p) const noexcept
        requires BlockOwner<Secondary>
    {
        return primary_.owns(p) || secondary_.owns(p);
    }

    /// In place where the owner can (its own reallocate or expand), otherwise a fresh block from
    /// the whole composite (Primary first), the contents copied, the old block freed.
    bool reallocate(Block& b, std::size_t n) noexcept {
        if (!b.ptr) {
            b = allocate(n, kMinAlign);
            return static_cast<bool>(b);
        }
        if (primary_.owns(b.ptr)) {
            if (in_place(primary_, b, n)) return true;
        } else if (in_place(secondary_, b, n)) {
            return true;
        }
        return reallocate_by_copy(*this, b, n);
    }

    void deallocate_all() noexcept
        requires DeallocatingAll<Primary> && DeallocatingAll<Secondary>
    {
        primary_.deallocate_all();
        secondary_.deallocate_all();
    }

    Primary& primary() noexcept { return primary_; }
    Secondary& secondary() noexcept { return secondary_; }

private:
    // An allocator's own attempt, in place or moving within itself; never a copy across.
    template <class A>
    static bool in_place(A& a, Block& b, std::size_t n) noexcept {
        if constexpr (Reallocating<A>)
            return a.reallocate(b, n);
        else if constexpr (Expanding<A>)
            return a.expand(b, n);
        else
            return false;
    }

    [[no_unique_address]] Primary primary_;
    [[no_unique_address]] Secondary secondary_;
};

}  // namespace chainalloc
