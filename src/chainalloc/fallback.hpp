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
        if (!chainalloc::try_deallocate(primary_, b)) secondary_.deallocate(b);
    }

    /// Deallocates b if either part owns it: one call per part, Primary first.
    bool try_deallocate(Block b) noexcept
        requires TryDeallocating<Secondary> || BlockOwner<Secondary>
    {
        return chainalloc::try_deallocate(primary_, b) || chainalloc::try_deallocate(secondary_, b);
    }

    /// The owner's answer; Secondary is the owner of whatever Primary does not own.
    std::size_t usable_size(const void* p) const noexcept
        requires UsableSize<Primary> && UsableSize<Secondary>
    {
        return primary_.owns(p) ? primary_.usable_size(p) : secondary_.usable_size(p);
    }

    /// Primary first, each part its own way (calloc, MALLOCX_ZERO) or by memset; offered when
    /// at least one part zeroes better than memset would (otherwise the generic helper does).
    Block allocate_zeroed(std::size_t n, std::size_t align) noexcept
        requires AllocatingZeroed<Primary> || AllocatingZeroed<Secondary>
    {
        if (Block b = chainalloc::allocate_zeroed(primary_, n, align)) return b;
        return chainalloc::allocate_zeroed(secondary_, n, align);
    }

    // fork: locks are taken outer to inner (Primary, then Secondary), the order in which a
    // request nests them, and released inner to outer. A part without hooks has no lock to take.
    void fork_prepare() noexcept
        requires ForkAware<Primary> || ForkAware<Secondary>
    {
        fork_prepare_if_any(primary_);
        fork_prepare_if_any(secondary_);
    }
    void fork_parent() noexcept
        requires ForkAware<Primary> || ForkAware<Secondary>
    {
        fork_parent_if_any(secondary_);
        fork_parent_if_any(primary_);
    }
    void fork_child() noexcept
        requires ForkAware<Primary> || ForkAware<Secondary>
    {
        fork_child_if_any(secondary_);
        fork_child_if_any(primary_);
    }

    /// The calling thread ends: both parts give its cached blocks back.
    void flush_thread() noexcept
        requires ThreadFlushing<Primary> || ThreadFlushing<Secondary>
    {
        flush_thread_if_any(primary_);
        flush_thread_if_any(secondary_);
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
