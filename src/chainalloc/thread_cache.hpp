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
// Idle bins shrink (as jemalloc's tcache GC does): each bin keeps a low-water mark, the fewest
// blocks it held since the last collection. Every kCollectEvery slow-path events of the thread
// (refills and overflows), a collection gives back three quarters of each bin's low water: blocks
// that sat unused through the whole interval. They go oldest first (the bottom of the stack,
// coldest in the CPU's caches), and the bin's next refill batch halves. A thread whose working
// set moves to other classes thus returns what the old ones cached; one that stays in its
// classes keeps them. A thread that stops allocating altogether keeps its cache (there is no
// event to act on) until it exits.
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
        std::uint16_t batch;  // the next refill's size: grows from kFirstBatch (0 = not yet)
        std::uint16_t low;    // the fewest blocks held since the last collection (saturates)
    };

    /// A bin's first refill takes this many blocks, and each one after twice the last, up to
    /// half its limit: a short-lived thread that allocates a few blocks of a class does not
    /// carve (and then give back) hundreds, and a busy one soon refills in large batches.
    static constexpr std::uint32_t kFirstBatch = 8;
    /// Slow-path events between collections: rare enough to cost nothing per request (each
    /// event already stands for a batch of fast ones), often enough that a class out of use
    /// gives its blocks back within a few thousand requests of other classes.
    static constexpr std::uint32_t kCollectEvery = 64;

    Bin bins[SizeClasses::kMaxClasses];
    std::uint32_t events;  // slow-path events since the last collection

    /// A cached block of class c, or nullptr when the bin is empty or its head is not sound.
    /// Makes no call, so the preload's inlined fast path needs no stack frame: anything odd
    /// goes to its slow path, where allocate() looks again and reports.
    [[gnu::always_inline]] void* try_allocate(std::size_t c) noexcept {
        Bin& bin = bins[c];
        FreeNode* node = bin.head;
        FreeNode* next;
        if (!node || node->mark != ListGuard::free_mark || !try_next(node, next)) return nullptr;
        bin.head = next;
        if (--bin.count < bin.low) bin.low = static_cast<std::uint16_t>(bin.count);
        node->mark = 0;
        return node;
    }

    /// limit: how many blocks this bin may hold; a refill takes up to half of it at once.
    void* allocate(Central& central, std::size_t c, std::uint32_t limit) noexcept {
        Bin& bin = bins[c];
        if (FreeNode* node = bin.head) [[likely]] {
            bin.head = next_of(node);
            if (--bin.count < bin.low) bin.low = static_cast<std::uint16_t>(bin.count);
            return mark_used(node);
        }
        return refill(central, c, limit);
    }

    /// Takes back p (which starts a block of class c) unless the bin is full or p is marked
    /// free already; false sends the caller to its slow path (deallocate). Makes no call.
    [[gnu::always_inline]] bool try_deallocate(std::size_t c, void* p, std::uint32_t limit) noexcept {
        Bin& bin = bins[c];
        auto* node = static_cast<FreeNode*>(p);
        if (node->mark == ListGuard::free_mark || bin.count >= limit) return false;
        node->mark = ListGuard::free_mark;
        set_next(node, bin.head);
        bin.head = node;
        ++bin.count;
        return true;
    }

    /// p starts a block of class c.
    void deallocate(Central& central, std::size_t c, void* p, std::uint32_t limit) noexcept {
        Bin& bin = bins[c];
        FreeNode* node = mark_free(p, [&](const FreeNode* n) {
            return list_holds(bin.head, n, bin.count) || central.holds_free(n);
        });
        set_next(node, bin.head);
        bin.head = node;
        if (++bin.count > limit) [[unlikely]] {
            release(central, c, bin.count - limit / 2);
            tick(central);
        }
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

    /// Gives back three quarters of each bin's low water, oldest blocks first, and halves the
    /// refill batch of every bin that had blocks to spare. Called every kCollectEvery slow-path
    /// events; public so tests and trim() can run one.
    void collect(Central& central) noexcept {
        events = 0;
        for (std::size_t c = 0; c < SizeClasses::kMaxClasses; ++c) {
            Bin& bin = bins[c];
            std::uint32_t low = bin.low < bin.count ? bin.low : bin.count;
            if (low) {
                release(central, c, low - low / 4);
                bin.batch = static_cast<std::uint16_t>(bin.batch / 2 > kFirstBatch ? bin.batch / 2 : kFirstBatch);
            }
            bin.low = static_cast<std::uint16_t>(bin.count < 0xffff ? bin.count : 0xffff);
        }
    }

private:
    [[gnu::noinline]] void* refill(Central& central, std::size_t c, std::uint32_t limit) noexcept {
        Bin& bin = bins[c];
        std::uint32_t most = limit / 2 ? limit / 2 : 1;
        std::uint32_t batch = bin.batch ? bin.batch : kFirstBatch;
        if (batch > most) batch = most;
        bin.batch = static_cast<std::uint16_t>(batch < most / 2 ? batch * 2 : most);
        FreeNode* list = nullptr;
        std::uint32_t got = central.take(c, batch, list);
        tick(central);
        if (got == 0) return nullptr;
        bin.head = next_of(list);  // keep the rest, hand out the first
        bin.count = got - 1;
        bin.low = 0;  // the bin ran dry in this interval
        return mark_used(list);
    }

    void tick(Central& central) noexcept {
        if (++events >= kCollectEvery) [[unlikely]]
            collect(central);
    }

    /// Gives back the bin's n oldest blocks: the bottom of its stack.
    [[gnu::noinline]] void release(Central& central, std::size_t c, std::uint32_t n) noexcept {
        Bin& bin = bins[c];
        std::uint32_t keep = bin.count - n;
        FreeNode* first = bin.head;
        if (keep) {
            FreeNode* last_kept = bin.head;
            for (std::uint32_t i = 1; i < keep; ++i) last_kept = next_of(last_kept);
            first = next_of(last_kept);
            set_next(last_kept, nullptr);
        } else {
            bin.head = nullptr;
        }
        bin.count = keep;
        if (bin.low > keep) bin.low = static_cast<std::uint16_t>(keep);
        central.give(c, first, n);
    }
};

}  // namespace chainalloc
