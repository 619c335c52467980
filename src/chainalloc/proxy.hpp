// Proxy<A, Logger>: forwards every call to A and tells the Logger what happened, failures
// included. It offers exactly the abilities A has. The counting loggers (Counting<What, Word>,
// CountingLogger) are in counting.hpp, included here.
#pragma once

#include "allocator.hpp"
#include "counting.hpp"

#include <utility>

namespace chainalloc {

/// What a Proxy reports. An empty `result` block means the request failed.
template <class L>
concept ProxyLogger = requires(L& l, Block b, std::size_t n) {
    l.on_allocate(n, n, b);        // size, alignment, result
    l.on_deallocate(b);            // the block given back
    l.on_reallocate(b, n, b, true);  // old block, new size, result block, success
};

template <Allocator A, ProxyLogger Logger>
class Proxy {
public:
    Proxy() = default;
    // The logger made in place unless given: one with atomic counters cannot be moved.
    explicit Proxy(A a) : inner_(std::move(a)) {}
    Proxy(A a, Logger l) : inner_(std::move(a)), logger_(std::move(l)) {}

    Block allocate(std::size_t n, std::size_t align) noexcept {
        Block b = inner_.allocate(n, align);
        logger_.on_allocate(n, align, b);
        return b;
    }

    void deallocate(Block b) noexcept {
        logger_.on_deallocate(b);
        inner_.deallocate(b);
    }

    bool reallocate(Block& b, std::size_t n) noexcept
        requires Reallocating<A>
    {
        Block old = b;
        bool ok = inner_.reallocate(b, n);
        logger_.on_reallocate(old, n, b, ok);
        return ok;
    }

    bool expand(Block& b, std::size_t n) noexcept
        requires Expanding<A>
    {
        Block old = b;
        bool ok = inner_.expand(b, n);
        logger_.on_reallocate(old, n, b, ok);
        return ok;
    }

    bool owns(const void* p) const noexcept
        requires BlockOwner<A>
    {
        return inner_.owns(p);
    }

    /// Gives everything back at once; the logger hears of it as no single block.
    void deallocate_all() noexcept
        requires DeallocatingAll<A>
    {
        inner_.deallocate_all();
    }

    std::size_t good_size(std::size_t n) const noexcept
        requires GoodSize<A>
    {
        return inner_.good_size(n);
    }

    std::size_t usable_size(const void* p) const noexcept
        requires UsableSize<A>
    {
        return inner_.usable_size(p);
    }

    /// Heard as an allocation: the logger cannot tell, and needs not.
    Block allocate_zeroed(std::size_t n, std::size_t align) noexcept
        requires AllocatingZeroed<A>
    {
        Block b = inner_.allocate_zeroed(n, align);
        logger_.on_allocate(n, align, b);
        return b;
    }

    /// Heard as a deallocation only when A owned the block. Where A can say so first (a
    /// BlockOwner), the logger hears before the block is freed, as with deallocate, so no other
    /// thread's allocation of the same address can be heard before this free.
    bool try_deallocate(Block b) noexcept
        requires TryDeallocating<A>
    {
        if constexpr (BlockOwner<A>) {
            if (!b.ptr || !inner_.owns(b.ptr)) return false;
            logger_.on_deallocate(b);
            inner_.deallocate(b);
            return true;
        } else {
            if (!inner_.try_deallocate(b)) return false;
            logger_.on_deallocate(b);
            return true;
        }
    }

    // fork and thread exit: A's own hooks; a logger with a lock of its own is the owner's to
    // order (the preload takes the log's lock before the chain's, as a request nests them).
    void fork_prepare() noexcept
        requires ForkAware<A>
    {
        inner_.fork_prepare();
    }
    void fork_parent() noexcept
        requires ForkAware<A>
    {
        inner_.fork_parent();
    }
    void fork_child() noexcept
        requires ForkAware<A>
    {
        inner_.fork_child();
    }
    void flush_thread() noexcept
        requires ThreadFlushing<A>
    {
        inner_.flush_thread();
    }

    A& inner() noexcept { return inner_; }
    Logger& logger() noexcept { return logger_; }
    const Logger& logger() const noexcept { return logger_; }

private:
    [[no_unique_address]] A inner_;
    [[no_unique_address]] Logger logger_;
};

}  // namespace chainalloc
