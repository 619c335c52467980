// Segregated: size-classed free lists over a PageHeap (page_heap.hpp). Each class takes spans
// of slices from the heap and carves them into blocks; a span whose blocks are all free goes
// back to the heap, where its memory can serve another class, and its pages return to the
// system after the decay time. A pointer's owner and class are found from its address (the
// segment map, then the span metadata in the segment's header): `owns` never reads the block.
//
// Every free block is on a checked list (free_node.hpp): mangled links, a free mark that finds
// double frees, and a check that a freed pointer starts a block of its span (interior frees).
// check=full adds BlockChecks (block_checks.hpp).
//
// Its parts: each class's spans are a SpanBin (span_bin.hpp: the class's lock, and the
// lock-free path by which blocks come back from any thread); this file is the layer around
// them: classes, the program's edge (the cap, full checks), large blocks, ownership.
//
// The cap. `max_bytes` caps the bytes the program holds from the layer, whatever the sizes:
// a capped layer also serves requests past its largest class itself (a mapping per block, in
// 64 KiB steps), so nothing escapes the count. What is counted is what the block API hands
// out (allocate/deallocate) or what a cache in front charges (charge/refund): blocks idle in
// a thread's cache are the layer's, not the program's, and never make a request fail. Past
// the cap the layer fails and a Fallback moves on.
#pragma once

#include "allocator.hpp"
#include "block_checks.hpp"
#include "free_node.hpp"
#include "page_heap.hpp"
#include "size_classes.hpp"
#include "span_bin.hpp"
#include "spin_lock.hpp"

#include <atomic>
#include <cstdint>

namespace chainalloc {

template <class Lock = NoLock>
class Segregated {
public:
    static constexpr std::uint32_t kDefaultDecayMs = 1000;
    /// The class a capped layer's blocks past its largest class report (a span per block).
    static constexpr std::size_t kLarge = 0xff;
    /// Large blocks start one slice into their mapping: that is as far as they align.
    static constexpr std::size_t kLargeAlign = kSliceSize;
    static constexpr std::size_t kMaxLarge = std::size_t{UINT32_MAX} - kSliceSize + 1;  // block_size is 32 bits
    /// A span holds at least this many blocks where 63 slices allow it: fewer trips to the
    /// heap for large classes, and at most a quarter of a span lost to the tail.
    static constexpr unsigned kMinBlocksPerSpan = 4;

    Segregated() = default;
    Segregated(const Segregated&) = delete;
    Segregated& operator=(const Segregated&) = delete;

    /// Sets the classes; maps nothing yet (segments come with the first requests). Allocates
    /// from no heap, so it is safe inside malloc.
    bool init(const SizeClasses& classes, std::size_t max_bytes = 0,
              std::uint32_t decay_ms = kDefaultDecayMs) noexcept {
        if (ready_ || classes.count() == 0) return false;
        ListGuard::init();
        classes_ = classes;
        max_bytes_ = max_bytes;
        heap_.set_decay(decay_ms);
        for (std::size_t c = 0; c < classes_.count(); ++c) {
            std::size_t size = classes_.size_of(c);
            std::size_t slices = (kMinBlocksPerSpan * size + kSliceSize - 1) / kSliceSize;
            if (slices > PageHeap<Lock>::kMaxSpanSlices)
                slices = size <= PageHeap<Lock>::kMaxSpanSlices * kSliceSize ? PageHeap<Lock>::kMaxSpanSlices : 0;
            bins_[c].init(size, static_cast<std::uint32_t>(slices), static_cast<std::uint8_t>(c));  // 0 slices: a huge span per block
        }
        ready_ = true;
        return true;
    }

    bool ready() const noexcept { return ready_; }
    const SizeClasses& classes() const noexcept { return classes_; }

    Block allocate(std::size_t n, std::size_t align) noexcept {
        int c = classes_.class_of(n, align);
        if (c == SizeClasses::kNone) {
            void* p = allocate_large(n, align);
            return p ? Block{p, usable_size(p)} : Block{};
        }
        void* p = hand_out(c, [&] { return allocate_class(c); });
        return p ? Block{p, classes_.size_of(c)} : Block{};
    }

    void deallocate(Block b) noexcept {
        if (!b.ptr) return;
        std::size_t c = take_back(b.ptr);
        if (c != kLarge) deallocate_class(c, b.ptr);
    }

    /// The program's edge, for allocate and for a cache in front of allocate_class: a block of
    /// class c from `source` (a callable returning one, or nullptr), charged against the cap
    /// and, with full checks, checked as it goes to the program.
    template <class Source>
    void* hand_out(std::size_t c, Source&& source) noexcept {
        std::size_t size = classes_.size_of(c);
        if (!charge(size)) return nullptr;
        void* p = source();
        if (!p) {
            refund(size);
            return nullptr;
        }
        if (full_) BlockChecks::allocated(p, size);
        return p;
    }

    /// The other side of hand_out: p, which this layer owns, comes back from the program. Its
    /// class (checked), for the caller to put the block on a list; or kLarge, when p was a
    /// large block and is already given back.
    std::size_t take_back(void* p) noexcept {
        std::size_t c = block_class(p);
        if (c == kLarge) {
            deallocate_large(p);
            return kLarge;
        }
        if (full_) BlockChecks::freed(p, classes_.size_of(c));
        refund(classes_.size_of(c));
        return c;
    }

    /// check=full (BlockChecks). A cache in front of allocate_class/deallocate_class goes
    /// through hand_out/take_back, as allocate/deallocate do.
    void set_full_checks(bool on) noexcept { full_ = on; }
    bool full_checks() const noexcept { return full_; }

    /// Whether the layer has a cap, and so serves every size.
    bool capped() const noexcept { return max_bytes_ != 0; }

    /// The cap's count: false (and nothing counted) if `bytes` more would pass max_bytes.
    /// A cache in front of allocate_class charges a block when it hands it to the program.
    bool charge(std::size_t bytes) noexcept {
        if (!max_bytes_) return true;
        if (out_.fetch_add(bytes, std::memory_order_relaxed) + bytes <= max_bytes_) return true;
        out_.fetch_sub(bytes, std::memory_order_relaxed);
        return false;
    }
    void refund(std::size_t bytes) noexcept {
        if (max_bytes_) out_.fetch_sub(bytes, std::memory_order_relaxed);
    }

    /// A block past the largest class, for a capped layer (nullptr otherwise, or past the cap).
    void* allocate_large(std::size_t n, std::size_t align) noexcept {
        if (!max_bytes_ || align > kLargeAlign || n > kMaxLarge) return nullptr;
        std::size_t size = align_up(n ? n : 1, kSliceSize);
        if (!charge(size)) return nullptr;
        Span* span = heap_.get_huge(size);
        if (!span) {
            refund(size);
            return nullptr;
        }
        span->block_size = static_cast<std::uint32_t>(size);
        span->capacity = 1;
        span->used = span->carved = 1;
        PageHeap<Lock>::describe(span, static_cast<std::uint8_t>(kLarge));
        large_.fetch_add(size, std::memory_order_relaxed);
        return span->start;
    }

    void deallocate_large(void* p) noexcept {
        Span* span = PageHeap<Lock>::span_of(p);
        std::size_t size = span->block_size;
        refund(size);
        large_.fetch_sub(size, std::memory_order_relaxed);
        heap_.put(span);
    }

    /// One ownership test and the span lookup: how a chain routes a free in one call.
    bool try_deallocate(Block b) noexcept {
        if (!b.ptr || !owns(b.ptr)) return false;
        deallocate(b);
        return true;
    }

    bool owns(const void* p) const noexcept { return heap_.slice_of(p) != nullptr; }

    /// The slice that holds p when this layer owns it, else nullptr: the free path's one lookup.
    Slice* slice_of(const void* p) const noexcept { return heap_.slice_of(p); }

    /// The class of the block p starts, checked: a pointer in no block in use, or not at a
    /// block's start, is misuse and aborts with its line.
    static std::size_t checked_class(const Slice* slice, const void* p) noexcept {
        if (!slice->is_block_start(p)) [[unlikely]]
            report_misuse(slice->block_size ? Misuse::interior_free : Misuse::not_in_use, p, slice->block_size);
        return slice->cls;
    }

    /// checked_class for a pointer this layer owns.
    std::size_t block_class(const void* p) const noexcept { return checked_class(heap_.slice_of(p), p); }

    /// The class of an owned pointer, and its block size (unchecked).
    std::size_t class_of_pointer(const void* p) const noexcept { return heap_.slice_of(p)->cls; }
    std::size_t usable_size(const void* p) const noexcept { return heap_.slice_of(p)->block_size; }

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
        FreeNode* head = nullptr;
        if (take(c, 1, head) == 0) return nullptr;
        return mark_used(head);
    }

    /// p is a block of class c (checked by checked_class).
    void deallocate_class(std::size_t c, void* p) noexcept {
        FreeNode* node = mark_free(p, [this](const FreeNode* n) { return holds_free(n); });
        give(c, node, 1);
    }

    /// Whether node is on its span's free or returned list: a block marked free that is there
    /// was freed twice (mark_free). Blocks in threads' caches are the caches' to find.
    bool holds_free(const FreeNode* node) noexcept {
        Slice* slice = heap_.slice_of(node);
        if (!slice || slice->block_size == 0 || slice->cls == kLarge) return false;
        return bins_[slice->cls].holds(node);
    }

    /// Takes up to `want` blocks of class c as a checked list of free-marked blocks; returns
    /// how many. Not counted against the cap: the caller charges what it hands on.
    std::uint32_t take(std::size_t c, std::uint32_t want, FreeNode*& head) noexcept {
        return bins_[c].take(heap_, want, head, full_);
    }

    /// Gives back the n free-marked blocks of class c linked from `first` (the last one's link
    /// is not read). Never waits for a lock.
    void give(std::size_t c, FreeNode* first, std::size_t n) noexcept { bins_[c].give(heap_, first, n); }

    /// Bytes the program holds (charged, not refunded). Counted only under a cap: without one
    /// the atomic would cost every request for nothing.
    std::size_t out_bytes() const noexcept { return out_.load(std::memory_order_relaxed); }
    /// Bytes in large blocks (a capped layer's requests past its largest class).
    std::size_t large_bytes() const noexcept { return large_.load(std::memory_order_relaxed); }

    /// Bytes of blocks carved in spans the classes hold (in use, cached, or free in a span).
    std::size_t carved_bytes() const noexcept {
        std::size_t total = 0;
        for (std::size_t c = 0; c < classes_.count(); ++c) total += carved_bytes(c);
        return total;
    }
    std::size_t carved_bytes(std::size_t c) const noexcept { return bins_[c].carved_bytes(); }

    /// Address space mapped from the system, and free memory not yet given back.
    std::size_t mapped_bytes() const noexcept { return heap_.mapped_bytes(); }
    std::size_t dirty_bytes() noexcept { return heap_.dirty_bytes(); }

    /// Drains every class's returned blocks and gives every free slice's pages back now.
    void trim() noexcept {
        for (std::size_t c = 0; c < classes_.count(); ++c) bins_[c].trim(heap_);
        heap_.purge_all();
    }

    // fork, as pthread_atfork's three handlers: every class's lock, then the heap's, is taken
    // before fork() (but one this thread holds itself, see ForkGuard) and released on both
    // sides after it, so the child never inherits a list halfway through a change. Blocks a
    // vanished thread was pushing lock-free are either on their list or not: at worst the
    // child never sees a few of the parent's blocks again.
    void fork_prepare() noexcept {
        for (std::size_t c = 0; c < classes_.count(); ++c) bins_[c].fork_prepare();
        heap_.fork_prepare();
    }
    void fork_parent() noexcept {
        heap_.fork_parent();
        for (std::size_t c = classes_.count(); c-- > 0;) bins_[c].fork_parent();
    }
    void fork_child() noexcept {
        heap_.fork_child();
        for (std::size_t c = classes_.count(); c-- > 0;) bins_[c].fork_child();
    }

private:
    SizeClasses classes_;
    bool ready_ = false;
    bool full_ = false;
    std::size_t max_bytes_ = 0;
    std::atomic<std::size_t> out_{0};
    std::atomic<std::size_t> large_{0};
    PageHeap<Lock> heap_;
    SpanBin<Lock> bins_[SizeClasses::kMaxClasses];
};

}  // namespace chainalloc
