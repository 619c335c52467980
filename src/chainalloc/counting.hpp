// Counting<What, Word>: a Proxy logger that counts what passes through a layer, the counters
// chosen at compile time (a counter not chosen takes no room and no instruction). The figures
// are the preload's CHAINALLOC_STATS columns, defined once here:
//
//   requests       blocks the layer handed out (a reallocation's new block included)
//   bytes          their usable sizes, summed: bytes ever handed out
//   refused        requests it could not serve (allocate or reallocate failed): under a Fallback
//                  what "fell through" to the next layer, at a terminal what failed
//   fell_through   of those, the ones a chain then passed to its next layer (on_fell_through:
//                  only the chain knows; the preload's "fell through" column, beside "failed")
//   frees          blocks given back (a reallocation's old block included)
//   reallocations  successful reallocate/expand calls (each also one free and one request)
//   live_bytes     usable bytes handed out and not given back; peak_bytes its maximum
//   live_blocks    blocks handed out and not given back
//
// So a reallocation in place counts as the old block freed and the new one handed out, as the
// preload counts it, and live figures return to zero when everything is given back.
//
// Word is each counter's type: std::size_t for one thread; std::atomic<std::int64_t> where
// threads share the layer (relaxed: the counts are exact, their order across threads is not;
// signed, so that a free counted before the request it undoes reads as a dip, not a wrap).
// For the preload: its LayerStats is Counting<counts::preload, std::atomic<std::int64_t>>, and
// its "failed" column is refused minus fell_through.
#pragma once

#include "allocator.hpp"

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace chainalloc {

namespace counts {
inline constexpr unsigned requests = 1u << 0, bytes = 1u << 1, refused = 1u << 2, frees = 1u << 3,
                          reallocations = 1u << 4, live_bytes = 1u << 5, peak_bytes = 1u << 6,
                          live_blocks = 1u << 7, fell_through = 1u << 8;
inline constexpr unsigned all = 0x1ff;
/// The preload's per-layer statistics (stats.cpp).
inline constexpr unsigned preload = requests | bytes | refused | frees | live_bytes | peak_bytes | fell_through;
}  // namespace counts

namespace detail {

/// A counter not chosen: no room (one distinct type per counter, so they may share an address),
/// and every update is nothing.
template <unsigned Bit>
struct NoCounter {};

template <unsigned Bit>
void count_add(NoCounter<Bit>&, std::size_t) noexcept {}
template <unsigned Bit>
void count_sub(NoCounter<Bit>&, std::size_t) noexcept {}
template <unsigned Bit, class V>
void count_raise(NoCounter<Bit>&, V) noexcept {}

template <class T>
    requires std::is_arithmetic_v<T>
void count_add(T& w, std::size_t n) noexcept { w += static_cast<T>(n); }
template <class T>
    requires std::is_arithmetic_v<T>
void count_sub(T& w, std::size_t n) noexcept { w -= static_cast<T>(n); }
template <class T>
    requires std::is_arithmetic_v<T>
T count_load(const T& w) noexcept { return w; }
template <class T>
    requires std::is_arithmetic_v<T>
void count_raise(T& w, T v) noexcept {
    if (v > w) w = v;
}

template <class T>
void count_add(std::atomic<T>& w, std::size_t n) noexcept { w.fetch_add(static_cast<T>(n), std::memory_order_relaxed); }
template <class T>
void count_sub(std::atomic<T>& w, std::size_t n) noexcept { w.fetch_sub(static_cast<T>(n), std::memory_order_relaxed); }
template <class T>
T count_load(const std::atomic<T>& w) noexcept { return w.load(std::memory_order_relaxed); }
template <class T>
void count_raise(std::atomic<T>& w, T v) noexcept {
    T seen = w.load(std::memory_order_relaxed);
    while (v > seen && !w.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
}

}  // namespace detail

template <unsigned What, class Word = std::size_t>
struct Counting {
    template <unsigned Bit>
    using Counter = std::conditional_t<(What & Bit) != 0, Word, detail::NoCounter<Bit>>;

    [[no_unique_address]] Counter<counts::requests> requests{};
    [[no_unique_address]] Counter<counts::bytes> bytes{};
    [[no_unique_address]] Counter<counts::refused> refused{};
    [[no_unique_address]] Counter<counts::frees> frees{};
    [[no_unique_address]] Counter<counts::reallocations> reallocations{};
    [[no_unique_address]] Counter<counts::live_bytes> live_bytes{};
    [[no_unique_address]] Counter<counts::peak_bytes> peak_bytes{};
    [[no_unique_address]] Counter<counts::live_blocks> live_blocks{};
    [[no_unique_address]] Counter<counts::fell_through> fell_through{};

    static_assert((What & counts::peak_bytes) == 0 || (What & counts::live_bytes) != 0,
                  "peak_bytes is the maximum of live_bytes: count live_bytes too");

    void on_allocate(std::size_t, std::size_t, Block result) noexcept {
        if (result)
            handed_out(result.size);
        else
            detail::count_add(refused, 1);
    }

    /// A refused request (counted by on_allocate) that its chain passed to the next layer.
    void on_fell_through() noexcept { detail::count_add(fell_through, 1); }

    void on_deallocate(Block b) noexcept {
        if (b.ptr) given_back(b.size);
    }

    void on_reallocate(Block old, std::size_t, Block result, bool ok) noexcept {
        if (!ok) {
            detail::count_add(refused, 1);
            return;
        }
        detail::count_add(reallocations, 1);
        if (old.ptr) given_back(old.size);
        if (result.ptr) handed_out(result.size);
    }

private:
    void handed_out(std::size_t n) noexcept {
        detail::count_add(requests, 1);
        detail::count_add(bytes, n);
        detail::count_add(live_blocks, 1);
        if constexpr ((What & counts::live_bytes) != 0) {
            detail::count_add(live_bytes, n);
            if constexpr ((What & counts::peak_bytes) != 0)
                detail::count_raise(peak_bytes, detail::count_load(live_bytes));
        }
    }

    void given_back(std::size_t n) noexcept {
        detail::count_add(frees, 1);
        detail::count_sub(live_blocks, 1);
        detail::count_sub(live_bytes, n);
    }
};

/// Every counter, one thread.
using CountingLogger = Counting<counts::all>;

}  // namespace chainalloc
