// Helpers shared by the block tests: byte patterns that prove contents survive, a by-reference
// parent (so a test can inspect a CheckingAllocator after the block that used it is gone), and
// a plain heap parent without reallocate or expand.
#pragma once

#include <chainalloc/allocator.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace chainalloc::testing {

/// Aligned memory from the process heap (aligned_alloc), exactly the bytes asked for, and no
/// abilities beyond allocate and deallocate: a parent or secondary that cannot resize.
struct HeapParent {
    Block allocate(std::size_t n, std::size_t align) noexcept {
        align = std::max(align, kMinAlign);
        std::size_t rounded = align_up(n ? n : 1, align);
        if (rounded < n) return {};
        void* p = std::aligned_alloc(align, rounded);
        return p ? Block{p, n} : Block{};
    }
    void deallocate(Block b) noexcept { std::free(b.ptr); }
};

/// Base with fork hooks and flush_thread that write what ran into a trace, as "<hook><name>":
/// 'p' prepare, 'a' parent, 'c' child, 'f' flush. For the order composites call their parts'
/// hooks in.
template <Allocator Base = HeapParent>
struct Hooked : Base {
    using Base::Base;
    std::string* trace = nullptr;
    char name = '?';

    Hooked& traced(std::string& t, char n) & noexcept {
        trace = &t;
        name = n;
        return *this;
    }
    void fork_prepare() noexcept { note('p'); }
    void fork_parent() noexcept { note('a'); }
    void fork_child() noexcept { note('c'); }
    void flush_thread() noexcept { note('f'); }

private:
    void note(char hook) { (*trace += hook) += name; }
};

/// A position- and seed-dependent byte, so swapped or shifted blocks are caught too.
constexpr unsigned char pattern_byte(std::size_t i, unsigned seed) noexcept {
    return static_cast<unsigned char>((i * 131u + seed * 7u + (i >> 8)) & 0xff);
}

inline void fill(void* p, std::size_t n, unsigned seed) noexcept {
    auto* c = static_cast<unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) c[i] = pattern_byte(i, seed);
}

inline bool holds(const void* p, std::size_t n, unsigned seed) noexcept {
    auto* c = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i)
        if (c[i] != pattern_byte(i, seed)) return false;
    return true;
}

/// Forwards to an allocator held elsewhere, with exactly its abilities. Blocks take their
/// parent by value; this lets the parent outlive them and be checked afterwards.
template <Allocator A>
class Ref {
public:
    explicit Ref(A& a) noexcept : a_(&a) {}

    Block allocate(std::size_t n, std::size_t align) { return a_->allocate(n, align); }
    void deallocate(Block b) { a_->deallocate(b); }

    bool owns(const void* p) const
        requires BlockOwner<A>
    {
        return a_->owns(p);
    }
    bool reallocate(Block& b, std::size_t n)
        requires Reallocating<A>
    {
        return a_->reallocate(b, n);
    }
    bool expand(Block& b, std::size_t n)
        requires Expanding<A>
    {
        return a_->expand(b, n);
    }
    void deallocate_all()
        requires DeallocatingAll<A>
    {
        a_->deallocate_all();
    }
    std::size_t good_size(std::size_t n) const
        requires GoodSize<A>
    {
        return a_->good_size(n);
    }

    std::size_t usable_size(const void* p) const
        requires UsableSize<A>
    {
        return a_->usable_size(p);
    }
    Block allocate_zeroed(std::size_t n, std::size_t align)
        requires AllocatingZeroed<A>
    {
        return a_->allocate_zeroed(n, align);
    }
    bool try_deallocate(Block b)
        requires TryDeallocating<A>
    {
        return a_->try_deallocate(b);
    }
    void fork_prepare()
        requires ForkAware<A>
    {
        a_->fork_prepare();
    }
    void fork_parent()
        requires ForkAware<A>
    {
        a_->fork_parent();
    }
    void fork_child()
        requires ForkAware<A>
    {
        a_->fork_child();
    }
    void flush_thread()
        requires ThreadFlushing<A>
    {
        a_->flush_thread();
    }

    A& target() const noexcept { return *a_; }

private:
    A* a_;
};

/// A stack address for "owns nothing foreign" checks; noinline so it is a real frame's.
[[gnu::noinline]] inline bool owns_own_stack_address(const auto& a) {
    volatile int local = 0;
    return a.owns(const_cast<const int*>(&local));
}

/// Request sizes for backend tests: 0..64 one by one, then around every power of two up to
/// 1 MiB.
inline std::vector<std::size_t> sizes_to_1mib() {
    std::vector<std::size_t> out;
    for (std::size_t n = 0; n <= 64; ++n) out.push_back(n);
    for (std::size_t p = 128; p <= (1u << 20); p *= 2) {
        out.push_back(p - 1);
        out.push_back(p);
        out.push_back(p + 1);
    }
    return out;
}

}  // namespace chainalloc::testing
