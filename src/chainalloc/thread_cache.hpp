// ThreadCache: a per-thread stack of free blocks per class in front of a shared central
// allocator (Segregated<SpinLock>). The common malloc and free touch only the calling thread's
// bins — no lock, no atomic. A bin that runs dry takes a batch from the central lists; one that
// grows past its limit gives half back (without waiting for a lock, see Segregated::give), so
// blocks freed by another thread find their way home.
//
// The bins are checked lists like the central ones (free_node.hpp): a pop verifies the block is
// still marked free and that the link it leaves behind is sound; a push finds double frees.
// The caller has checked that a freed pointer starts a block (Segregated::checked_class).
//
// All-zero is a valid empty cache and it has no constructor or destructor, so it can live in
// initial-exec TLS without a TLS init hook; the owner calls flush_all() when its thread ends.
#pragma once

#include "segregated.hpp"

#include <cstdint>

namespace chainalloc {

template <class Central>
struct ThreadCache {
    struct Bin {
        FreeNode* head;
        std::uint32_t count;
    };

    Bin bins[SizeClasses::kMaxClasses];

    /// A cached block of class c, or nullptr when the bin is empty. The preload's inlined fast
    /// path uses this alone and leaves refills to its out-of-line slow path, so it makes no
    /// call and needs no stack frame.
    void* try_allocate(std::size_t c) noexcept {
        Bin& bin = bins[c];
        FreeNode* node = bin.head;
        if (!node) return nullptr;
        bin.head = next_of(node);
        --bin.count;
        return mark_used(node);
    }

    /// limit: how many blocks this bin may hold; a refill takes half of it at once.
    void* allocate(Central& central, std::size_t c, std::uint32_t limit) noexcept {
        if (void* p = try_allocate(c)) [[likely]]
            return p;
        return refill(central, c, limit);
    }

    /// p starts a block of class c.
    void deallocate(Central& central, std::size_t c, void* p, std::uint32_t limit) noexcept {
        Bin& bin = bins[c];
        FreeNode* node = mark_free(p);
        set_next(node, bin.head);
        bin.head = node;
        if (++bin.count > limit) [[unlikely]]
            release(central, c, bin.count - limit / 2);
    }

    /// Gives every cached block back (thread exit).
    void flush_all(Central& central) noexcept {
        for (std::size_t c = 0; c < SizeClasses::kMaxClasses; ++c)
            if (bins[c].count) release(central, c, bins[c].count);
    }

    std::size_t cached_blocks() const noexcept {
        std::size_t n = 0;
        for (const Bin& b : bins) n += b.count;
        return n;
    }

private:
    [[gnu::noinline]] void* refill(Central& central, std::size_t c, std::uint32_t limit) noexcept {
        std::uint32_t batch = limit / 2 ? limit / 2 : 1;
        FreeNode* list = nullptr;
        std::uint32_t got = central.take(c, batch, list);
        if (got == 0) return nullptr;
        Bin& bin = bins[c];
        bin.head = next_of(list);  // keep the rest, hand out the first
        bin.count = got - 1;
        return mark_used(list);
    }

    [[gnu::noinline]] void release(Central& central, std::size_t c, std::uint32_t n) noexcept {
        Bin& bin = bins[c];
        FreeNode* first = bin.head;
        FreeNode* last = first;
        for (std::uint32_t i = 1; i < n; ++i) last = next_of(last);
        bin.head = next_of(last);
        bin.count -= n;
        central.give(c, first, last, n);
    }
};

}  // namespace chainalloc
