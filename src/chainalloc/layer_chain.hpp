// LayerChain<N>: Fallback for a chain whose shape is known only at run time — up to N erased
// blocks (erased.hpp), tried in order. The preload's chain is one, built from CHAINALLOC_CHAIN.
//
// - allocate: the first layer that serves, and which one it was. A refusal falls through to the
//   next layer, unless the layer says its refusal is final (a capped layer): then the request
//   fails. Observers (a proxy) serve through the rest of the chain themselves; a request made
//   `unobserved` passes them by.
// - owner_of: the first layer that owns the pointer (a layer without `owns` claims nothing);
//   none() when no layer does, and the caller decides who takes foreign pointers.
// - reallocate: a block resized by the layer that owns it, or moved to wherever the chain
//   serves the new size (see below).
// - the hooks (fork, thread exit, trim) reach every layer that has them; fork's prepare runs
//   front to back, parent and child back to front.
//
// An Observer (template argument of allocate and reallocate) sees each step, for statistics:
//   on_served(i, Block), on_fell_through(i), on_failed(i), on_freed(i, p, usable bytes).
//   NoObserver costs nothing.
#pragma once

#include "erased.hpp"

#include <cstring>

namespace chainalloc {

struct NoObserver {
    void on_served(unsigned, Block) noexcept {}
    void on_fell_through(unsigned) noexcept {}
    void on_failed(unsigned) noexcept {}
    void on_freed(unsigned, const void*, std::size_t) noexcept {}
};

template <unsigned N>
class LayerChain {
public:
    struct Served {
        Block block;
        unsigned by;  // the layer that made it; none() when the request failed
    };

    /// Appends a layer; false when the chain is full.
    bool add(Erased layer) noexcept {
        if (count_ == N) return false;
        layers_[count_++] = layer;
        return true;
    }
    unsigned size() const noexcept { return count_; }
    unsigned none() const noexcept { return N; }
    const Erased& operator[](unsigned i) const noexcept { return layers_[i]; }

    template <class Observer = NoObserver>
    Served allocate(unsigned from, std::size_t n, std::size_t align, bool zero, bool observed = true,
                    Observer&& seen = Observer{}) noexcept {
        for (unsigned i = from; i < count_; ++i) {
            const Erased& layer = layers_[i];
            if (layer.ops->observer && !observed) continue;
            unsigned by = i;
            Block b = layer.ops->allocate(layer.self, n, align, zero, by);
            if (layer.ops->observer) return {b, b ? by : none()};  // it walked the rest itself
            if (b) {
                seen.on_served(i, b);
                return {b, i};
            }
            bool last = i + 1 == count_;
            if (last || (layer.ops->refusal_is_final && layer.ops->refusal_is_final(layer.self, align))) {
                seen.on_failed(i);
                return {{}, none()};
            }
            seen.on_fell_through(i);
        }
        return {{}, none()};
    }

    /// Resizes p to n bytes. `owner` made p: layer `index` of this chain, or (index none())
    /// the block the caller gives pointers no layer owns. In order:
    /// - the owner says p fits (size classes: n in p's class): p stays;
    /// - the owner resizes it itself (glibc and jemalloc, in place or by mremap, no copy);
    /// - else a new block from the whole chain, unobserved (the caller reports the one
    ///   reallocation), a copy of the old bytes, and p given back to its owner.
    /// A failure leaves p untouched.
    template <class Observer = NoObserver>
    Served reallocate(const Erased& owner, unsigned index, void* p, std::size_t n,
                      Observer&& seen = Observer{}) noexcept {
        const ErasedOps& ops = *owner.ops;
        if (ops.fits_in_place && ops.fits_in_place(owner.self, p, n)) return {{p, n}, index};
        std::size_t old_size = ops.usable_size ? ops.usable_size(owner.self, p) : 0;
        if (!ops.fits_in_place && ops.reallocate) {
            void* q = ops.reallocate(owner.self, p, n);
            if (!q) return {{}, none()};
            seen.on_freed(index, p, old_size);
            seen.on_served(index, {q, n});
            return {{q, n}, index};
        }
        if (!ops.usable_size) return {{}, none()};  // nothing tells how much to copy
        Served moved = allocate(0, n, kMinAlign, false, false, seen);
        if (!moved.block) return moved;
        std::memcpy(moved.block.ptr, p, n < old_size ? n : old_size);
        seen.on_freed(index, p, old_size);
        ops.deallocate(owner.self, p);
        return moved;
    }

    unsigned owner_of(const void* p) const noexcept {
        for (unsigned i = 0; i < count_; ++i)
            if (layers_[i].ops->owns && layers_[i].ops->owns(layers_[i].self, p)) return i;
        return none();
    }

    void fork_prepare() noexcept {
        for (unsigned i = 0; i < count_; ++i)
            if (layers_[i].ops->fork_prepare) layers_[i].ops->fork_prepare(layers_[i].self);
    }
    void fork_parent() noexcept {
        for (unsigned i = count_; i-- > 0;)
            if (layers_[i].ops->fork_parent) layers_[i].ops->fork_parent(layers_[i].self);
    }
    void fork_child() noexcept {
        for (unsigned i = count_; i-- > 0;)
            if (layers_[i].ops->fork_child) layers_[i].ops->fork_child(layers_[i].self);
    }
    void flush_thread() noexcept {
        for (unsigned i = 0; i < count_; ++i)
            if (layers_[i].ops->flush_thread) layers_[i].ops->flush_thread(layers_[i].self);
    }
    /// True if any layer gave memory back.
    bool trim() noexcept {
        bool released = false;
        for (unsigned i = 0; i < count_; ++i)
            if (layers_[i].ops->trim) released |= layers_[i].ops->trim(layers_[i].self);
        return released;
    }

private:
    Erased layers_[N] = {};
    unsigned count_ = 0;
};

}  // namespace chainalloc
