// CachedSegregated<Caches>: size classes with per-thread caches, as one BlockOwner — a shared
// Segregated<SpinLock> and, in front of it, the calling thread's ThreadCache. The common
// allocate and deallocate touch only that thread's bins; flush_thread() gives them back when
// the thread ends.
//
// Where a thread's cache lives is the owner's choice, given as the Caches policy:
//
//   ThreadCache<Segregated<SpinLock>>* Caches::get() const  the calling thread's cache, or
//                                                            nullptr to use none right now
//
// ThreadCached<Tag> (thread_cached.hpp) keeps it in a thread_local of its own; the preload
// keeps several layers' caches in its one initial-exec TLS object, so that its fast path reads
// one TLS base, and hands out none while a thread is exiting. Either way the block does the
// same thing, and the preload's freelist layer is this very type.
//
// The program's edge (Segregated::hand_out/take_back) is crossed here, so a cap counts what
// the program holds and never blocks idle in a cache; sizes past the largest class are the
// central's large blocks (a capped layer's) or refused. Owns by address, as Segregated does.
#pragma once

#include "allocator.hpp"
#include "segregated.hpp"
#include "spin_lock.hpp"
#include "thread_cache.hpp"

#include <cstdint>

namespace chainalloc {

/// How many blocks of a class a thread's cache may hold: `blocks`, and, when `bytes` is set,
/// no more than `bytes` of the class (so large classes don't pin megabytes per thread); at
/// least 2, so a refill is worth its lock. blocks = 0: no cache.
struct CacheLimits {
    std::uint32_t blocks = 0;
    std::size_t bytes = 0;

    CacheLimits() = default;
    CacheLimits(std::uint32_t b, std::size_t by = 0) noexcept : blocks(b), bytes(by) {}  // NOLINT: a count converts

    std::uint32_t for_size(std::size_t size) const noexcept {
        if (blocks == 0) return 0;
        std::size_t n = blocks;
        if (bytes && bytes / size < n) n = bytes / size;
        return static_cast<std::uint32_t>(n < 2 ? 2 : n);
    }
};

template <class Caches>
class CachedSegregated {
public:
    using Central = Segregated<SpinLock>;
    using Cache = ThreadCache<Central>;

    CachedSegregated() = default;
    /// The destroying thread's cache is emptied: a later object with the same cache (the same
    /// ThreadCached tag) must not find this one's blocks there. Other threads must have
    /// flushed theirs (at their exit, say).
    ~CachedSegregated() { flush_thread(); }
    CachedSegregated(const CachedSegregated&) = delete;
    CachedSegregated& operator=(const CachedSegregated&) = delete;

    /// Sets up the central lists (Segregated::init) and each class's cache limit. Allocates
    /// from no heap, so it is safe inside malloc.
    bool init(const SizeClasses& classes, CacheLimits limits, std::size_t max_bytes = 0,
              std::uint32_t decay_ms = Central::kDefaultDecayMs, Caches caches = Caches{}) noexcept {
        if (!central_.init(classes, max_bytes, decay_ms)) return false;
        for (std::size_t c = 0; c < classes.count(); ++c) limit_[c] = limits.for_size(classes.size_of(c));
        caches_ = caches;
        return true;
    }

    Block allocate(std::size_t n, std::size_t align) noexcept {
        int c = central_.classes().class_of(n, align);
        if (c == SizeClasses::kNone) {
            void* p = central_.allocate_large(n, align);
            return p ? Block{p, central_.usable_size(p)} : Block{};
        }
        void* p = central_.hand_out(c, [&] {
            Cache* cache = caches_.get();
            return cache ? cache->allocate(central_, c, limit_[c]) : central_.allocate_class(c);
        });
        return p ? Block{p, central_.classes().size_of(c)} : Block{};
    }

    void deallocate(Block b) noexcept {
        if (!b.ptr) return;
        std::size_t c = central_.take_back(b.ptr);
        if (c == Central::kLarge) return;
        if (Cache* cache = caches_.get())
            cache->deallocate(central_, c, b.ptr, limit_[c]);
        else
            central_.deallocate_class(c, b.ptr);
    }

    bool try_deallocate(Block b) noexcept {
        if (!b.ptr || !owns(b.ptr)) return false;
        deallocate(b);
        return true;
    }

    bool owns(const void* p) const noexcept { return central_.owns(p); }
    std::size_t usable_size(const void* p) const noexcept { return central_.usable_size(p); }
    bool expand(Block& b, std::size_t n) noexcept { return central_.expand(b, n); }
    std::size_t good_size(std::size_t n) const noexcept { return central_.good_size(n); }

    /// Whether p can keep its place for a new size n: n falls in p's class, or, for a large
    /// block, needs the same whole slices. (p is checked: misuse aborts with its line.)
    bool fits_in_place(const void* p, std::size_t n) const noexcept {
        std::size_t c = central_.block_class(p);
        int wanted = central_.classes().class_of(n);
        if (c == Central::kLarge) return wanted == SizeClasses::kNone && align_up(n, kSliceSize) == usable_size(p);
        return wanted != SizeClasses::kNone && static_cast<std::size_t>(wanted) == c;
    }

    /// A capped layer serves every size it can, so its refusal is the cap's: a chain fails the
    /// request rather than let it escape the count through the next layer.
    bool refusal_is_final(std::size_t align) const noexcept {
        return central_.capped() && align <= Central::kLargeAlign;
    }

    /// The calling thread is ending: its cached blocks go back to the central lists.
    void flush_thread() noexcept {
        if (Cache* cache = caches_.get()) cache->flush_all(central_);
    }

    /// malloc_trim: this thread's cache, then every free slice, back at once. True if memory
    /// was given back.
    bool trim() noexcept {
        flush_thread();
        std::size_t held = central_.carved_bytes() + central_.dirty_bytes();
        central_.trim();
        return central_.carved_bytes() + central_.dirty_bytes() < held;
    }

    // fork: the central lists' locks. A thread's cache is its own and needs no lock; in the
    // child, the other threads' caches are simply never used again.
    void fork_prepare() noexcept { central_.fork_prepare(); }
    void fork_parent() noexcept { central_.fork_parent(); }
    void fork_child() noexcept { central_.fork_child(); }

    Central& central() noexcept { return central_; }
    const Central& central() const noexcept { return central_; }
    /// How many blocks of class c a thread's cache holds at most (0: no cache).
    std::uint32_t limit(std::size_t c) const noexcept { return limit_[c]; }
    const Caches& caches() const noexcept { return caches_; }
    /// Blocks the calling thread holds in its cache.
    std::size_t cached_blocks() const noexcept {
        const Cache* cache = caches_.get();
        return cache ? cache->cached_blocks() : 0;
    }

private:
    Central central_;
    std::uint32_t limit_[SizeClasses::kMaxClasses] = {};
    Caches caches_{};
};

}  // namespace chainalloc
