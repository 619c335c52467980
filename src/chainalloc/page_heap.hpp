// PageHeap: the memory under a free-list layer, as segments of 4 MiB mapped when needed and
// cut into spans of 64 KiB slices. A span serves one size class at a time; once all its blocks
// are free it comes back here, and its slices can serve any class next. A free slice keeps its
// pages until it has been free for the decay time, then madvise(MADV_DONTNEED) gives them back
// to the system; at once when free slices pass both kDirtyFloor and an eighth of the memory
// in use, so a burst of frees is returned without waiting for later activity.
//
// Layout. A segment is 4 MiB-aligned and its first slice holds the Segment header: what free
// needs of every slice (Slice) and the spans' metadata (Span), outside the blocks, so a
// pointer's span is `address & ~(4 MiB-1)` plus an index, with no header next to any block.
// Ownership is the process-wide SegmentMap and the header's owner field. A block that does not
// fit in 63 slices gets a huge segment (one mapping, header first), unmapped when its span
// comes back.
//
// Locks. One lock guards the segment list and the slice masks; it is never held across a
// system call: mmap, munmap and madvise run after it is released (purging slices are taken out
// of the free mask meanwhile, so nobody hands them out half-purged).
#pragma once

#include "allocator.hpp"
#include "os_pages.hpp"
#include "segment_map.hpp"
#include "spin_lock.hpp"

#include <atomic>
#include <cstdint>

#include <sys/mman.h>
#include <time.h>

namespace chainalloc {

struct FreeNode;

inline constexpr unsigned kSliceShift = 16;
inline constexpr std::size_t kSliceSize = std::size_t{1} << kSliceShift;
inline constexpr unsigned kSlicesPerSegment = kSegmentSize / kSliceSize;  // 64; slice 0 = header

/// What a free needs to know about a slice, copied into every slice of a span so that one
/// lookup answers it. 32 bytes: the index is a shift.
struct Slice {
    char* start;            // the span's first block; nullptr while the slice serves no class
    std::uint64_t divisor;  // ceil(2^64 / block_size): "offset % size == 0" is one multiply
    std::uint64_t bytes;    // capacity x block_size: an offset at or past it is in no block
    std::uint32_t block_size;
    std::uint8_t cls;
    std::uint8_t head;      // index of the first slice of the span (or of this free run)

    /// True when p is the first byte of one of the span's blocks (false on a free slice).
    bool is_block_start(const void* p) const noexcept {
        auto offset = static_cast<std::uint64_t>(static_cast<const char*>(p) - start);
        return offset < bytes && offset * divisor <= divisor - 1;
    }
};
static_assert(sizeof(Slice) == 32);

/// A run of slices serving one class: the slow path's metadata, in the segment header at the
/// index of the run's first slice.
struct Span {
    char* start;               // the first block (as in its Slice entries)
    std::uint32_t block_size;  // 0 while the span serves no class
    std::uint32_t slices;      // length of the run

    // The class's, under its lock.
    FreeNode* free;            // free blocks (a checked list, free_node.hpp)
    std::uint32_t used;        // blocks out: with the program, in thread caches, or returned
    std::uint32_t carved;      // blocks made so far (the rest is untouched memory)
    std::uint32_t capacity;
    bool listed;               // on its class's partial list
    Span* next;
    Span* prev;

    // Any thread, without a lock: blocks given back while the class's lock was busy.
    std::atomic<FreeNode*> returned;
    Span* notify_next;

    // The page heap's: when this slice became free (decay).
    std::uint64_t retired_ms;
};

struct Segment {
    const void* owner;   // the PageHeap that mapped it
    Segment* next;       // its heap's list, most recently freed-into first
    Segment* prev;
    std::size_t size;    // the mapping: kSegmentSize, more for a huge one
    std::uint64_t free;  // free slices, bit i = slice i (slice 0, the header, never)
    std::uint64_t dirty; // free slices that may still hold pages
    bool huge;
    alignas(32) Slice slices[kSlicesPerSegment];
    Span spans[kSlicesPerSegment];
    // check=full only (Segregated): a bit per 16-byte granule, set while the block starting
    // there is with the program. Untouched, so free of RSS, unless the checks are on.
    std::uint64_t live[kSegmentSize / 16 / 64];
};
static_assert(sizeof(Segment) <= kSliceSize, "the header fits in slice 0");

inline Segment* segment_of(const void* p) noexcept {
    return reinterpret_cast<Segment*>(reinterpret_cast<std::uintptr_t>(p) & ~(kSegmentSize - 1));
}
inline unsigned slice_index(const void* p) noexcept {
    return (reinterpret_cast<std::uintptr_t>(p) >> kSliceShift) & (kSlicesPerSegment - 1);
}

/// The slice holding p, when p is in a segment of any page heap (nullptr otherwise). No lock:
/// it reads the header only, never the block.
inline Slice* slice_at(const void* p) noexcept {
    return g_segment_map.contains(p) ? &segment_of(p)->slices[slice_index(p)] : nullptr;
}

template <class Lock = NoLock>
class PageHeap {
public:
    static constexpr unsigned kMaxSpanSlices = kSlicesPerSegment - 1;
    static constexpr std::size_t kDirtyFloor = std::size_t{4} << 20;

    PageHeap() = default;
    PageHeap(const PageHeap&) = delete;
    PageHeap& operator=(const PageHeap&) = delete;
    ~PageHeap() {
        for (Segment* s = segments_; s;) {
            Segment* next = s->next;
            unmap(s);
            s = next;
        }
    }

    void set_decay(std::uint32_t ms) noexcept { decay_ms_ = ms; }

    /// The slice of p if it lies in one of this heap's segments, else nullptr. O(1).
    Slice* slice_of(const void* p) const noexcept {
        if (!g_segment_map.contains(p)) return nullptr;
        Segment* segment = segment_of(p);
        if (segment->owner != this) return nullptr;
        return &segment->slices[slice_index(p)];
    }

    /// The span of p, which lies in one of this heap's segments.
    static Span* span_of(const void* p) noexcept {
        Segment* segment = segment_of(p);
        return &segment->spans[segment->slices[slice_index(p)].head];
    }

    /// Describes a span's blocks in each of its slices, for the lookups of free.
    static void describe(Span* span, std::uint8_t cls) noexcept {
        Segment* segment = segment_of(span);
        auto first = static_cast<unsigned>(span - segment->spans);
        Slice info{span->start, ~std::uint64_t{0} / span->block_size + 1,
                   std::uint64_t{span->capacity} * span->block_size, span->block_size, cls,
                   static_cast<std::uint8_t>(first)};
        for (unsigned i = first; i < first + span->slices && i < kSlicesPerSegment; ++i) segment->slices[i] = info;
    }

    /// A run of `slices` slices (1..kMaxSpanSlices), its `start` set, or nullptr when the system
    /// has no memory.
    /// Warm (recently freed) slices first, then clean ones, then a new segment.
    Span* get(unsigned slices) noexcept {
        std::uint64_t now = now_ms();
        Span* span;
        bool purge;
        {
            LockGuard guard(lock_);
            span = take_run(slices);
            purge = purge_due(now);
        }
        if (purge) purge_dirty(now);
        if (span) return span;
        Segment* segment = map_segment(kSegmentSize);
        if (!segment) return nullptr;
        segment->free = ~std::uint64_t{1};  // every slice but the header
        LockGuard guard(lock_);
        link_front(segment);
        return take_run(slices);
    }

    /// A huge span for one block of `bytes`: a mapping of its own, given back when it is freed.
    /// It covers whole 4 MiB regions, though only the first is marked in the segment map: a
    /// region marked ours must be ours to its end, or another mapping placed in its tail would
    /// pass for one of our blocks. (Virtual size only: the tail is never touched.)
    Span* get_huge(std::size_t bytes) noexcept {
        std::size_t size = align_up(kSliceSize + bytes, kSegmentSize);
        if (size < bytes) return nullptr;
        Segment* segment = map_segment(size);
        if (!segment) return nullptr;
        segment->huge = true;
        Span& span = segment->spans[1];
        span.slices = static_cast<std::uint32_t>((size >> kSliceShift) - 1);
        span.start = reinterpret_cast<char*>(segment) + kSliceSize;
        for (unsigned i = 1; i < kSlicesPerSegment; ++i) segment->slices[i].head = 1;
        LockGuard guard(lock_);
        link_front(segment);
        return &span;
    }

    /// Takes back a span whose blocks are all free. Its slices may serve any class from now on.
    void put(Span* span) noexcept {
        Segment* segment = segment_of(span);
        std::uint64_t now = now_ms();
        span->block_size = 0;
        unsigned first = static_cast<unsigned>(span - segment->spans);
        for (unsigned i = first; i < first + span->slices && i < kSlicesPerSegment; ++i)
            segment->slices[i] = Slice{nullptr, 0, 0, 0, 0, static_cast<std::uint8_t>(i)};
        if (segment->huge) {
            {
                LockGuard guard(lock_);
                unlink(segment);
            }
            unmap(segment);
            return;
        }
        std::uint64_t bits = run_bits(first, span->slices);
        bool purge;
        {
            LockGuard guard(lock_);
            for (unsigned i = first; i < first + span->slices; ++i) segment->spans[i].retired_ms = now;
            segment->free |= bits;
            segment->dirty |= bits;
            dirty_bytes_ += span->slices * kSliceSize;
            in_use_bytes_ -= span->slices * kSliceSize;
            unlink(segment);
            link_front(segment);
            purge = purge_due(now);
        }
        if (purge) purge_dirty(now);
    }

    /// Gives back every free slice's pages now (what the decay would do later).
    void purge_all() noexcept { purge_dirty(now_ms(), true); }

    std::size_t mapped_bytes() const noexcept { return mapped_bytes_.load(std::memory_order_relaxed); }
    std::size_t dirty_bytes() noexcept {
        LockGuard guard(lock_);
        return dirty_bytes_;
    }

    void fork_prepare() noexcept { fork_.prepare(lock_); }
    void fork_parent() noexcept { fork_.parent(lock_); }
    void fork_child() noexcept { fork_.child(lock_); }

private:
    static std::uint64_t now_ms() noexcept {
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // the vDSO's: no system call
        return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
    }

    static std::uint64_t run_bits(unsigned first, unsigned n) noexcept {
        return (n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1) << first;
    }

    /// Bits i where slices i..i+n-1 are all set in mask.
    static std::uint64_t runs(std::uint64_t mask, unsigned n) noexcept {
        std::uint64_t m = mask;
        for (unsigned j = 1; j < n && m; ++j) m &= mask >> j;
        return m;
    }

    // Called with the lock held.
    Span* take_run(unsigned n) noexcept {
        for (int pass = 0; pass < 2; ++pass) {
            for (Segment* s = segments_; s; s = s->next) {
                if (s->huge) continue;
                std::uint64_t m = runs(pass == 0 ? (s->free & s->dirty) : s->free, n);
                if (!m) continue;
                unsigned first = static_cast<unsigned>(__builtin_ctzll(m));
                std::uint64_t bits = run_bits(first, n);
                dirty_bytes_ -= static_cast<std::size_t>(__builtin_popcountll(s->dirty & bits)) * kSliceSize;
                s->free &= ~bits;
                s->dirty &= ~bits;
                in_use_bytes_ += n * kSliceSize;
                for (unsigned i = first; i < first + n; ++i) s->slices[i].head = static_cast<std::uint8_t>(first);
                Span& span = s->spans[first];
                span.slices = n;
                span.start = reinterpret_cast<char*>(s) + (std::size_t{first} << kSliceShift);
                return &span;
            }
        }
        return nullptr;
    }

    // Free slices past their bound go back at once, whatever their age. Lock held.
    bool over_bound() const noexcept { return dirty_bytes_ > kDirtyFloor && dirty_bytes_ > in_use_bytes_ / 8; }

    bool purge_due(std::uint64_t now) const noexcept {
        if (dirty_bytes_ == 0) return false;
        return over_bound() || now >= last_purge_ms_ + decay_ms_;
    }

    // Gives back the pages of slices free for longer than the decay (all free ones when the
    // dirty bytes are over their bound, or `all`). Slices being purged leave the free mask
    // while madvise runs, outside the lock.
    void purge_dirty(std::uint64_t now, bool all = false) noexcept {
        constexpr unsigned kBatch = 32;
        for (;;) {
            Segment* taken[kBatch];
            std::uint64_t bits[kBatch];
            unsigned count = 0;
            bool more = false;
            {
                LockGuard guard(lock_);
                bool over = over_bound();
                last_purge_ms_ = now;
                for (Segment* s = segments_; s; s = s->next) {
                    std::uint64_t m = s->dirty & s->free;
                    if (!all && !over) {
                        std::uint64_t old = 0;
                        for (std::uint64_t r = m; r; r &= r - 1) {
                            unsigned i = static_cast<unsigned>(__builtin_ctzll(r));
                            if (s->spans[i].retired_ms + decay_ms_ <= now) old |= std::uint64_t{1} << i;
                        }
                        m = old;
                    }
                    if (!m) continue;
                    if (count == kBatch) {
                        more = true;
                        break;
                    }
                    s->free &= ~m;
                    s->dirty &= ~m;
                    dirty_bytes_ -= static_cast<std::size_t>(__builtin_popcountll(m)) * kSliceSize;
                    taken[count] = s;
                    bits[count++] = m;
                }
            }
            for (unsigned k = 0; k < count; ++k) {
                for (std::uint64_t m = bits[k]; m;) {
                    unsigned first = static_cast<unsigned>(__builtin_ctzll(m));
                    unsigned n = static_cast<unsigned>(__builtin_ctzll(~(m >> first)));
                    madvise(reinterpret_cast<char*>(taken[k]) + (std::size_t{first} << kSliceShift),
                            std::size_t{n} << kSliceShift, MADV_DONTNEED);
                    m &= ~run_bits(first, n);
                }
            }
            if (count) {
                LockGuard guard(lock_);
                for (unsigned k = 0; k < count; ++k) taken[k]->free |= bits[k];
            }
            if (!more) return;
        }
    }

    // A size-byte mapping at a segment boundary, its header ready; no lock held.
    Segment* map_segment(std::size_t size) noexcept {
        void* raw = os_pages::map_aligned(size, kSegmentSize, next_hint_.load(std::memory_order_relaxed));
        if (!raw) return nullptr;
        // The next segment likely fits just below this one (mmap grows downwards).
        next_hint_.store(reinterpret_cast<char*>(raw) - kSegmentSize, std::memory_order_relaxed);
        auto* segment = static_cast<Segment*>(raw);  // fresh pages are zero: the header is empty
        segment->owner = this;
        segment->size = size;
        for (unsigned i = 0; i < kSlicesPerSegment; ++i) segment->slices[i].head = static_cast<std::uint8_t>(i);
        mapped_bytes_.fetch_add(size, std::memory_order_relaxed);
        // Published last: span_of trusts the header of a segment the map shows.
        g_segment_map.add(reinterpret_cast<std::uintptr_t>(raw), kSegmentSize);
        return segment;
    }

    void unmap(Segment* segment) noexcept {
        g_segment_map.remove(reinterpret_cast<std::uintptr_t>(segment), kSegmentSize);
        mapped_bytes_.fetch_sub(segment->size, std::memory_order_relaxed);
        munmap(segment, segment->size);
    }

    void link_front(Segment* s) noexcept {
        s->prev = nullptr;
        s->next = segments_;
        if (segments_) segments_->prev = s;
        segments_ = s;
    }
    void unlink(Segment* s) noexcept {
        (s->prev ? s->prev->next : segments_) = s->next;
        if (s->next) s->next->prev = s->prev;
    }

    Lock lock_;
    ForkGuard<Lock> fork_;
    Segment* segments_ = nullptr;
    std::atomic<void*> next_hint_{nullptr};
    std::size_t dirty_bytes_ = 0;
    std::size_t in_use_bytes_ = 0;
    std::uint64_t last_purge_ms_ = 0;
    std::uint32_t decay_ms_ = 1000;
    std::atomic<std::size_t> mapped_bytes_{0};
};

}  // namespace chainalloc
