// SpanBin: the spans of one size class, shared by all threads (Segregated holds one per class).
// A span comes from the page heap, is carved into blocks on demand, and goes back to the heap
// once all its blocks are free.
//
// Locks and threads. The bin's lock guards its list of partial spans, held for a few pointer
// moves and never across a system call (the heap maps and purges outside its own lock, and a
// new span is fetched with this lock released). Blocks given back (`give`: thread caches'
// overflow, frees from any thread) never wait for it: they are pushed on their span's atomic
// `returned` list, and the span on the bin's atomic notify stack when that list was empty;
// whoever holds the lock next (a `take`, or a `give` whose try_lock wins) drains them into the
// spans. Pushes only add and the drain takes whole lists at once, so there is no ABA.
#pragma once

#include "block_checks.hpp"
#include "free_node.hpp"
#include "page_heap.hpp"
#include "spin_lock.hpp"

#include <atomic>
#include <cstdint>

namespace chainalloc {

template <class Lock>
class alignas(64) SpanBin {  // own cache line: threads working on other classes don't collide
public:
    /// Blocks of `block_size` bytes, class number `cls`, in spans of `slices` slices (0: a
    /// mapping of its own per block, for blocks larger than a segment).
    void init(std::size_t block_size, std::uint32_t slices, std::uint8_t cls) noexcept {
        size_ = block_size;
        slices_ = slices;
        cls_ = cls;
    }

    /// Takes up to `want` blocks as a checked list of free-marked blocks; returns how many.
    /// One lock round trip for a batch (two when a new span is needed). `poison`: blocks carved
    /// now are poisoned (check=full), as freed ones are.
    std::uint32_t take(PageHeap<Lock>& heap, std::uint32_t want, FreeNode*& head, bool poison) noexcept {
        Span* retired = nullptr;
        std::uint32_t got;
        head = nullptr;
        {
            LockGuard guard(lock_);
            drain(retired);
            got = fill(want, head, poison);
        }
        release(heap, retired);
        if (got == 0) {
            if (Span* span = new_span(heap)) {
                LockGuard guard(lock_);
                list(span);
                got = fill(want, head, poison);
            }
        }
        return got;
    }

    /// Gives back the n free-marked blocks linked from `first` (the last one's link is not
    /// read). Never waits for the lock.
    void give(PageHeap<Lock>& heap, FreeNode* first, std::size_t n) noexcept {
        FreeNode* node = first;
        for (std::size_t left = n; left;) {
            // The longest run of blocks of one span goes back with one atomic push.
            Span* span = PageHeap<Lock>::span_of(node);
            FreeNode* run_last = node;
            FreeNode* after = nullptr;
            while (--left) {
                after = next_of(run_last);
                if (PageHeap<Lock>::span_of(after) != span) break;
                run_last = after;
                after = nullptr;
            }
            push_returned(span, node, run_last);
            node = after;
        }
        if (lock_.try_lock()) {
            Span* retired = nullptr;
            drain(retired);
            lock_.unlock();
            release(heap, retired);
        }
    }

    /// Whether node, a block of this class, is on its span's free or returned list.
    bool holds(const FreeNode* node) noexcept {
        Span* span = PageHeap<Lock>::span_of(node);
        LockGuard guard(lock_);
        return list_holds(span->free, node, span->capacity) ||
               list_holds(span->returned.load(std::memory_order_acquire), node, span->capacity);
    }

    /// Drains the returned blocks and gives every span left empty back to the heap, the last
    /// one included.
    void trim(PageHeap<Lock>& heap) noexcept {
        Span* retired = nullptr;
        {
            LockGuard guard(lock_);
            drain(retired, true);
        }
        release(heap, retired);
    }

    /// Bytes of blocks carved in this bin's spans (in use, cached, or free in a span).
    std::size_t carved_bytes() const noexcept { return carved_.load(std::memory_order_relaxed); }

    // fork: see Segregated's fork_prepare.
    void fork_prepare() noexcept { fork_.prepare(lock_); }
    void fork_parent() noexcept { fork_.parent(lock_); }
    void fork_child() noexcept { fork_.child(lock_); }

private:
    // A span from the heap, set up for this class; no lock of ours held (the heap may map).
    Span* new_span(PageHeap<Lock>& heap) noexcept {
        Span* span = slices_ ? heap.get(slices_) : heap.get_huge(size_);
        if (!span) return nullptr;
        // A huge span holds one block: only its first 4 MiB are in the segment map.
        span->capacity = slices_ ? static_cast<std::uint32_t>((std::size_t{span->slices} << kSliceShift) / size_) : 1;
        span->free = nullptr;
        span->used = span->carved = 0;
        span->listed = false;
        span->block_size = static_cast<std::uint32_t>(size_);
        PageHeap<Lock>::describe(span, cls_);
        return span;
    }

    void list(Span* span) noexcept {
        span->listed = true;
        span->prev = nullptr;
        span->next = partial_;
        if (partial_) partial_->prev = span;
        partial_ = span;
    }
    void unlist(Span* span) noexcept {
        span->listed = false;
        (span->prev ? span->prev->next : partial_) = span->next;
        if (span->next) span->next->prev = span->prev;
    }

    // Moves up to `want` blocks from the partial spans to `head`; lock held.
    std::uint32_t fill(std::uint32_t want, FreeNode*& head, bool poison) noexcept {
        std::uint32_t got = 0;
        while (got < want && partial_) {
            Span* span = partial_;
            while (got < want && span->free) {
                FreeNode* node = expect_free(span->free);
                span->free = next_of(node);
                set_next(node, head);
                head = node;
                ++span->used;
                ++got;
            }
            while (got < want && !span->free && span->carved < span->capacity) {
                auto* node = reinterpret_cast<FreeNode*>(span->start + std::size_t{span->carved} * size_);
                if (poison) BlockChecks::poison(node, size_);
                node->mark = ListGuard::free_mark;
                set_next(node, head);
                head = node;
                ++span->carved;
                ++span->used;
                ++got;
                carved_.fetch_add(size_, std::memory_order_relaxed);
            }
            if (!span->free && span->carved == span->capacity) unlist(span);
        }
        return got;
    }

    void push_returned(Span* span, FreeNode* first, FreeNode* last) noexcept {
        // acq_rel: finding the list empty means a drain emptied it after it had read the
        // span's notify_next, which this thread may now write.
        FreeNode* old = span->returned.load(std::memory_order_acquire);
        do set_next(last, old);
        while (!span->returned.compare_exchange_weak(old, first, std::memory_order_acq_rel, std::memory_order_acquire));
        if (old) return;  // the span is on the notify stack already
        Span* top = notify_.load(std::memory_order_relaxed);
        do span->notify_next = top;
        while (!notify_.compare_exchange_weak(top, span, std::memory_order_release, std::memory_order_relaxed));
    }

    // Moves returned blocks into their spans; spans left empty go on `retired` for the heap
    // (given back after the lock is released), except the bin's only span, so that a loop of
    // one malloc and one free does not take a span from the heap each time. Lock held.
    void drain(Span*& retired, bool keep_none = false) noexcept {
        for (Span* span = notify_.exchange(nullptr, std::memory_order_acquire); span;) {
            Span* next_span = span->notify_next;  // read before the exchange: a push may relist it after
            FreeNode* blocks = span->returned.exchange(nullptr, std::memory_order_acq_rel);
            std::uint32_t n = 1;
            FreeNode* tail = blocks;
            while (FreeNode* x = next_of(tail)) {
                tail = x;
                ++n;
            }
            set_next(tail, span->free);
            span->free = blocks;
            span->used -= n;
            if (!span->listed) list(span);
            if (span->used == 0 && (keep_none || partial_ != span || span->next)) retire(span, retired);
            span = next_span;
        }
        if (!keep_none) return;
        for (Span* span = partial_; span;) {
            Span* next = span->next;
            if (span->used == 0) retire(span, retired);
            span = next;
        }
    }

    void retire(Span* span, Span*& retired) noexcept {
        unlist(span);
        span->next = retired;
        retired = span;
    }

    // No lock held: the heap may purge.
    void release(PageHeap<Lock>& heap, Span* retired) noexcept {
        while (retired) {
            Span* next = retired->next;
            carved_.fetch_sub(std::size_t{retired->carved} * retired->block_size, std::memory_order_relaxed);
            heap.put(retired);
            retired = next;
        }
    }

    Lock lock_;
    ForkGuard<Lock> fork_;
    Span* partial_ = nullptr;  // spans with free or uncarved blocks (doubly linked)
    std::atomic<Span*> notify_{nullptr};
    std::atomic<std::size_t> carved_{0};
    std::size_t size_ = 0;
    std::uint32_t slices_ = 0;
    std::uint8_t cls_ = 0;
};

}  // namespace chainalloc
