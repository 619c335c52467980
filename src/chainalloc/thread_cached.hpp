// ThreadCached<Tag>: size classes with per-thread caches as one Allocator — a shared
// Segregated<SpinLock> and, in front of it, each thread's ThreadCache. The common allocate and
// deallocate touch only the calling thread's bins; flush_thread() gives them back when the
// thread ends (call it from the thread's exit path: a pthread key destructor, say).
//
// The caches are a thread_local of the Tag type: one ThreadCached object per Tag (a second
// would share the first's caches with a different central). ThreadCache is all zero and has no
// constructor or destructor, so the thread_local needs no TLS init hook and can be
// initial-exec TLS. Owns by address, as Segregated does.
#pragma once

#include "segregated.hpp"
#include "spin_lock.hpp"
#include "thread_cache.hpp"

#include <cstdint>

namespace chainalloc {

template <class Tag>
class ThreadCached {
public:
    using Central = Segregated<SpinLock>;

    ThreadCached() = default;
    ThreadCached(const ThreadCached&) = delete;
    ThreadCached& operator=(const ThreadCached&) = delete;

    /// Sets up the central lists (Segregated::init); every class's bin holds up to `limit`
    /// blocks per thread (at least 2). Allocates from no heap.
    bool init(const SizeClasses& classes, std::uint32_t limit, std::size_t max_bytes = 0,
              std::uint32_t decay_ms = Central::kDefaultDecayMs) noexcept {
        if (!central_.init(classes, max_bytes, decay_ms)) return false;
        for (std::uint32_t& l : limit_) l = limit < 2 ? 2 : limit;
        return true;
    }

    /// Under a cap (Segregated's max_bytes) what the program holds is charged here, at the
    /// cache's edge, so blocks idle in any thread's cache never count; sizes past the largest
    /// class go to the central's large blocks.
    Block allocate(std::size_t n, std::size_t align) noexcept {
        int c = central_.classes().class_of(n, align);
        if (c == SizeClasses::kNone) {
            void* p = central_.allocate_large(n, align);
            return p ? Block{p, central_.usable_size(p)} : Block{};
        }
        void* p = central_.hand_out(c, [&] { return t_cache.allocate(central_, c, limit_[c]); });
        return p ? Block{p, central_.classes().size_of(c)} : Block{};
    }

    void deallocate(Block b) noexcept {
        if (!b.ptr) return;
        std::size_t c = central_.take_back(b.ptr);
        if (c != Central::kLarge) t_cache.deallocate(central_, c, b.ptr, limit_[c]);
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

    /// The calling thread's cached blocks go back to the central lists.
    void flush_thread() noexcept { t_cache.flush_all(central_); }

    // fork: the central lists' locks. A thread's cache is its own and needs no lock; in the
    // child, the other threads' caches are simply never used again.
    void fork_prepare() noexcept { central_.fork_prepare(); }
    void fork_parent() noexcept { central_.fork_parent(); }
    void fork_child() noexcept { central_.fork_child(); }

    Central& central() noexcept { return central_; }
    /// Blocks the calling thread holds in its cache.
    static std::size_t cached_blocks() noexcept { return t_cache.cached_blocks(); }

private:
    static thread_local ThreadCache<Central> t_cache;

    Central central_;
    std::uint32_t limit_[SizeClasses::kMaxClasses] = {};
};

template <class Tag>
constinit thread_local ThreadCache<typename ThreadCached<Tag>::Central> ThreadCached<Tag>::t_cache{};

}  // namespace chainalloc
