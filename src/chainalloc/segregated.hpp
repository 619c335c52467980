// Segregated: one free list per size class, all carved from one reserved range of address
// space, one equal-sized, aligned sub-range per class. Ownership and a pointer's class are
// arithmetic on the address (no header, no lookup), so `owns` is O(1) and never touches the
// pointed-to memory — safe on any pointer.
//
// Pages are reserved PROT_NONE up front and made writable as the classes grow. Blocks never go
// back to the system: a freed block waits on its class's list for the next request of that
// class. `max_bytes` caps the bytes out in use (handed out and not yet given back, thread
// caches included); past it the layer fails (and a Fallback moves on). A freed block of one
// class does not count, even though it stays reserved for its class.
//
// Thread safety is the Lock policy's: NoLock for one thread, SpinLock for the preload's central
// lists, where ThreadCache batches keep the locks off the common path.
#pragma once

#include "allocator.hpp"
#include "size_classes.hpp"
#include "spin_lock.hpp"

#include <atomic>
#include <cstdint>

#include <sys/mman.h>
#include <unistd.h>

namespace chainalloc {

/// A free block: its first word links to the next.
struct FreeNode {
    FreeNode* next;
};

template <class Lock = NoLock>
class Segregated {
public:
    /// 4 GiB of address space per class by default; init halves it down to 16 MiB if the
    /// reservation fails (small address-space limits).
    static constexpr unsigned kDefaultSpanShift = 32;
    static constexpr unsigned kMinSpanShift = 24;
    static constexpr std::size_t kCommitStep = 256 * 1024;

    Segregated() = default;
    Segregated(const Segregated&) = delete;
    Segregated& operator=(const Segregated&) = delete;
    ~Segregated() {
        if (base_) munmap(reinterpret_cast<void*>(base_), span_total_);
    }

    /// Reserves the range. Allocates nothing from any heap (safe inside malloc).
    bool init(const SizeClasses& classes, std::size_t max_bytes = 0,
              unsigned span_shift = kDefaultSpanShift) noexcept {
        if (base_ || classes.count() == 0) return false;
        page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        classes_ = classes;
        max_bytes_ = max_bytes;
        for (unsigned shift = span_shift; shift >= kMinSpanShift; --shift) {
            if (classes_.max_size() > (std::size_t{1} << shift)) break;
            if (reserve(classes_.count() << shift, std::size_t{1} << shift)) {
                shift_ = shift;
                break;
            }
        }
        if (!base_) return false;
        for (std::size_t c = 0; c < classes_.count(); ++c) {
            std::size_t size = classes_.size_of(c);
            char* range = reinterpret_cast<char*>(base_ + (c << shift_));
            // Every sub-range is 2^shift-aligned, so without an offset the first (hottest)
            // blocks of all classes would fall in the same cache sets. A per-class "colour"
            // spreads them; it is a multiple of the class's power-of-two factor, so blocks
            // keep the alignment class_of(n, align) promises.
            std::size_t pow2 = size & -size;
            std::size_t colour = align_up((c * 4160) % 65536, pow2);
            char* start = range + colour;
            bins_[c].start = bins_[c].bump = start;
            bins_[c].committed = reinterpret_cast<char*>(align_down_to_page(start));
            // Whole blocks only: the last one must end inside the sub-range.
            bins_[c].end = start + (((std::size_t{1} << shift_) - colour) / size) * size;
        }
        return true;
    }

    bool ready() const noexcept { return base_ != 0; }
    const SizeClasses& classes() const noexcept { return classes_; }

    Block allocate(std::size_t n, std::size_t align) noexcept {
        int c = classes_.class_of(n, align);
        if (c == SizeClasses::kNone) return {};
        void* p = allocate_class(c);
        return p ? Block{p, classes_.size_of(c)} : Block{};
    }

    void deallocate(Block b) noexcept {
        if (b.ptr) deallocate_class(class_of_pointer(b.ptr), b.ptr);
    }

    /// One range check and the class arithmetic: how a chain routes a free in one call.
    bool try_deallocate(Block b) noexcept {
        if (!b.ptr || !owns(b.ptr)) return false;
        deallocate_class(class_of_pointer(b.ptr), b.ptr);
        return true;
    }

    bool owns(const void* p) const noexcept {
        return reinterpret_cast<std::uintptr_t>(p) - base_ < span_total_;
    }

    /// The class of an owned pointer.
    std::size_t class_of_pointer(const void* p) const noexcept {
        return (reinterpret_cast<std::uintptr_t>(p) - base_) >> shift_;
    }

    std::size_t usable_size(const void* p) const noexcept {
        return classes_.size_of(class_of_pointer(p));
    }

    /// Within its class a block can take any size up to the class size.
    bool expand(Block& b, std::size_t n) noexcept {
        if (!b.ptr) return false;  // an empty block has no class to grow in
        std::size_t size = usable_size(b.ptr);
        if (n > size) return false;
        b.size = size;
        return true;
    }

    std::size_t good_size(std::size_t n) const noexcept {
        int c = classes_.class_of(n);
        return c == SizeClasses::kNone ? 0 : classes_.size_of(c);
    }

    void* allocate_class(std::size_t c) noexcept {
        std::size_t size = classes_.size_of(c);
        if (!take_out(size)) return nullptr;
        Bin& bin = bins_[c];
        LockGuard guard(bin.lock);
        if (FreeNode* node = bin.free) {
            bin.free = node->next;
            return node;
        }
        void* p = carve(c);
        if (!p) put_back(size);
        return p;
    }

    void deallocate_class(std::size_t c, void* p) noexcept {
        Bin& bin = bins_[c];
        auto* node = static_cast<FreeNode*>(p);
        {
            LockGuard guard(bin.lock);
            node->next = bin.free;
            bin.free = node;
        }
        put_back(classes_.size_of(c));
    }

    /// Takes up to `want` blocks of class c as a linked list (free ones first, then fresh ones);
    /// returns how many. One lock round trip for a whole batch.
    std::uint32_t take(std::size_t c, std::uint32_t want, FreeNode*& head) noexcept {
        std::size_t size = classes_.size_of(c);
        Bin& bin = bins_[c];
        LockGuard guard(bin.lock);
        std::uint32_t got = 0;
        FreeNode* list = nullptr;
        while (got < want && bin.free && take_out(size)) {
            FreeNode* node = bin.free;
            bin.free = node->next;
            node->next = list;
            list = node;
            ++got;
        }
        for (; got < want && take_out(size); ++got) {
            auto* node = static_cast<FreeNode*>(carve(c));
            if (!node) {
                put_back(size);
                break;
            }
            node->next = list;
            list = node;
        }
        head = list;
        return got;
    }

    /// Gives back a list of n blocks of class c, first to last linked.
    void give(std::size_t c, FreeNode* first, FreeNode* last, std::size_t n) noexcept {
        Bin& bin = bins_[c];
        {
            LockGuard guard(bin.lock);
            last->next = bin.free;
            bin.free = first;
        }
        put_back(n * classes_.size_of(c));
    }

    /// Bytes out in use (handed out, not given back; thread caches included). Counted only
    /// under a cap: without one the atomic would cost every batch for nothing.
    std::size_t out_bytes() const noexcept { return out_.load(std::memory_order_relaxed); }

    /// Bytes carved so far (in use, cached by threads, or on the free lists).
    std::size_t carved_bytes() const noexcept { return carved_.load(std::memory_order_relaxed); }
    std::size_t carved_bytes(std::size_t c) const noexcept {
        return static_cast<std::size_t>(bins_[c].bump - bins_[c].start);
    }

    // fork, as pthread_atfork's three handlers: every class's lock is taken before fork() (but
    // one this thread holds itself, see ForkGuard) and released on both sides after it, so the
    // child never inherits a list that a vanished thread was halfway through changing.
    void fork_prepare() noexcept {
        for (std::size_t c = 0; c < classes_.count(); ++c) bins_[c].fork.prepare(bins_[c].lock);
    }
    void fork_parent() noexcept {
        for (std::size_t c = classes_.count(); c-- > 0;) bins_[c].fork.parent(bins_[c].lock);
    }
    void fork_child() noexcept {
        for (std::size_t c = classes_.count(); c-- > 0;) bins_[c].fork.child(bins_[c].lock);
    }

private:
    struct alignas(64) Bin {  // own cache line: threads working on other classes don't collide
        Lock lock;
        ForkGuard<Lock> fork;
        FreeNode* free = nullptr;
        char* start = nullptr;  // first block of the class
        char* bump = nullptr;
        char* committed = nullptr;
        char* end = nullptr;
    };

    bool reserve(std::size_t total, std::size_t align) noexcept {
        void* raw = mmap(nullptr, total + align, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (raw == MAP_FAILED) return false;
        std::uintptr_t start = reinterpret_cast<std::uintptr_t>(raw);
        std::uintptr_t base = align_up(start, align);
        if (base > start) munmap(raw, base - start);
        std::size_t tail = (start + total + align) - (base + total);
        if (tail) munmap(reinterpret_cast<void*>(base + total), tail);
        base_ = base;
        span_total_ = total;
        return true;
    }

    // A fresh block from the class's untouched space; called with the class's lock held.
    void* carve(std::size_t c) noexcept {
        Bin& bin = bins_[c];
        std::size_t size = classes_.size_of(c);
        if (bin.end - bin.bump < static_cast<std::ptrdiff_t>(size)) return nullptr;
        if (bin.bump + size > bin.committed && !commit(bin, size)) return nullptr;
        carved_.fetch_add(size, std::memory_order_relaxed);
        void* p = bin.bump;
        bin.bump += size;
        return p;
    }

    // The cap's accounting: false if taking `size` more bytes out would pass max_bytes.
    bool take_out(std::size_t size) noexcept {
        if (!max_bytes_) return true;
        if (out_.fetch_add(size, std::memory_order_relaxed) + size <= max_bytes_) return true;
        out_.fetch_sub(size, std::memory_order_relaxed);
        return false;
    }
    void put_back(std::size_t size) noexcept {
        if (max_bytes_) out_.fetch_sub(size, std::memory_order_relaxed);
    }

    std::uintptr_t align_down_to_page(const char* p) const noexcept {
        return reinterpret_cast<std::uintptr_t>(p) & ~(page_ - 1);
    }

    // Makes the next stretch of the class writable, at least `need` bytes past the bump.
    bool commit(Bin& bin, std::size_t need) noexcept {
        const std::size_t page = page_;
        std::size_t step = std::max(need, kCommitStep);
        char* to = reinterpret_cast<char*>(align_up(reinterpret_cast<std::uintptr_t>(bin.bump) + step, page));
        if (to > bin.end) to = reinterpret_cast<char*>(align_up(reinterpret_cast<std::uintptr_t>(bin.end), page));
        if (mprotect(bin.committed, to - bin.committed, PROT_READ | PROT_WRITE) != 0) return false;
        bin.committed = to;
        return true;
    }

    SizeClasses classes_;
    std::uintptr_t base_ = 0;
    std::size_t span_total_ = 0;
    unsigned shift_ = 0;
    std::size_t page_ = 4096;
    std::size_t max_bytes_ = 0;
    std::atomic<std::size_t> carved_{0};
    std::atomic<std::size_t> out_{0};
    Bin bins_[SizeClasses::kMaxClasses];
};

}  // namespace chainalloc
