#define BOOST_TEST_MODULE jemalloc
#include <boost/test/unit_test.hpp>

#include <chainalloc/fallback.hpp>
#include <chainalloc/jemalloc.hpp>
#include <chainalloc/system.hpp>

#include "conformance.hpp"

#include <vector>

using chainalloc::Block;
using chainalloc::Jemalloc;
using chainalloc::testing::fill;
using chainalloc::testing::holds;
using chainalloc::testing::sizes_to_1mib;
namespace ca = chainalloc;

static_assert(ca::Reallocating<Jemalloc> && ca::Expanding<Jemalloc> && ca::GoodSize<Jemalloc> &&
              !ca::BlockOwner<Jemalloc>);
static_assert(std::is_empty_v<Jemalloc>);
static_assert(ca::UsableSize<Jemalloc> && ca::AllocatingZeroed<Jemalloc>);
static_assert(!ca::TryDeallocating<Jemalloc> && !ca::ForkAware<Jemalloc> && !ca::ThreadFlushing<Jemalloc>);

BOOST_AUTO_TEST_CASE(sizes_and_alignments) {
    Jemalloc j;
    for (std::size_t align = 1; align <= 4096; align *= 2)
        for (std::size_t n : sizes_to_1mib()) {
            Block b = j.allocate(n, align);
            if (!b) BOOST_FAIL("allocate(" << n << ", " << align << ") failed");
            // Never below malloc's 16, even for a request jemalloc would put in its 8-byte class.
            if (!ca::is_aligned(b.ptr, std::max(align, ca::kMinAlign)))
                BOOST_FAIL("allocate(" << n << ", " << align << ") misaligned " << b.ptr);
            if (b.size < n) BOOST_FAIL("allocate(" << n << ") gave " << b.size);
            BOOST_TEST(b.size == Jemalloc::usable_size(b.ptr));
            fill(b.ptr, b.size, static_cast<unsigned>(n));
            if (!holds(b.ptr, b.size, static_cast<unsigned>(n))) BOOST_FAIL("contents at " << n);
            j.deallocate(b);
        }
}

BOOST_AUTO_TEST_CASE(larger_alignments) {
    Jemalloc j;
    for (std::size_t align = 8192; align <= (1u << 21); align *= 2) {
        Block b = j.allocate(100, align);
        BOOST_REQUIRE(b);
        BOOST_TEST(ca::is_aligned(b.ptr, align));
        j.deallocate(b);
    }
}

BOOST_AUTO_TEST_CASE(zero_bytes_get_a_real_block) {
    Jemalloc j;
    Block a = j.allocate(0, 16), b = j.allocate(0, 1);
    BOOST_REQUIRE(a);
    BOOST_REQUIRE(b);
    BOOST_TEST(a.ptr != b.ptr);
    BOOST_TEST(a.size >= 1u);
    j.deallocate(a);
    j.deallocate(b);
    j.deallocate(Block{});  // harmless
}

BOOST_AUTO_TEST_CASE(impossible_requests_fail_cleanly) {
    Jemalloc j;
    BOOST_TEST((j.allocate(SIZE_MAX, 16) == Block{}));
    BOOST_TEST((j.allocate(SIZE_MAX / 2, 16) == Block{}));
    Block b = j.allocate(64, 16);
    fill(b.ptr, 64, 1);
    const Block before = b;
    BOOST_TEST(!j.reallocate(b, SIZE_MAX / 2));
    BOOST_TEST((b == before));
    BOOST_TEST(!j.expand(b, SIZE_MAX / 2));
    BOOST_TEST((b == before));
    BOOST_TEST(holds(b.ptr, 64, 1));
    j.deallocate(b);
}

BOOST_AUTO_TEST_CASE(good_size_is_what_allocate_gives) {
    Jemalloc j;
    for (std::size_t n : sizes_to_1mib()) {
        Block b = j.allocate(n, 16);
        BOOST_TEST(j.good_size(n) == b.size, "n " << n);
        BOOST_TEST(j.good_size(n) >= n);
        j.deallocate(b);
    }
    BOOST_TEST(j.good_size(0) == j.good_size(1));
    BOOST_TEST(j.good_size(1) >= 16u);  // a 16-byte class at least, as allocate gives
}

BOOST_AUTO_TEST_CASE(reallocate_grow_and_shrink_keep_contents) {
    Jemalloc j;
    Block b = j.allocate(16, 16);
    fill(b.ptr, 16, 2);
    std::size_t kept = 16;
    unsigned seed = 2;
    for (std::size_t n : {100u, 10000u, 1u << 20, 3u << 20, 5000u, 100u, 17u, 1u, 0u}) {
        BOOST_TEST_CONTEXT("to " << n) {
            BOOST_REQUIRE(j.reallocate(b, n));
            BOOST_TEST(b.ptr != nullptr);
            BOOST_TEST(b.size >= n);
            BOOST_TEST(b.size == Jemalloc::usable_size(b.ptr));
            BOOST_TEST(ca::is_aligned(b.ptr, 16));
            BOOST_TEST(holds(b.ptr, std::min(kept, n), seed));
            seed += 1;
            fill(b.ptr, n, seed);
            kept = n;
        }
    }
    j.deallocate(b);
    Block empty;
    BOOST_TEST(j.reallocate(empty, 300));
    BOOST_TEST(empty.size >= 300u);
    j.deallocate(empty);
}

// expand never moves: either the block grows where it is, or nothing changes.
BOOST_AUTO_TEST_CASE(expand_is_in_place_only) {
    Jemalloc j;
    Block b = j.allocate(100, 16);
    const std::size_t cls = b.size;
    BOOST_REQUIRE(cls >= 100u);
    fill(b.ptr, 100, 3);
    void* p = b.ptr;
    b.size = 100;
    BOOST_TEST(j.expand(b, cls));  // up to its own size class: always in place
    BOOST_TEST(b.ptr == p);
    BOOST_TEST(b.size == cls);
    BOOST_TEST(j.expand(b, 10));  // shrinking a small block keeps it as it is
    BOOST_TEST(b.ptr == p);
    BOOST_TEST(b.size >= 10u);
    BOOST_TEST(b.size == Jemalloc::usable_size(p));
    BOOST_TEST(holds(b.ptr, 10, 3));
    // Growing past the class: in place or refused, never moved.
    for (std::size_t n : {cls + 1, std::size_t{4096}, std::size_t{1} << 20}) {
        Block before = b;
        if (j.expand(b, n)) {
            BOOST_TEST(b.ptr == p);
            BOOST_TEST(b.size >= n);
            BOOST_TEST(b.size == Jemalloc::usable_size(p));
        } else {
            BOOST_TEST((b == before));
        }
        BOOST_TEST(holds(b.ptr, 10, 3));
    }
    j.deallocate(b);
    Block empty;
    BOOST_TEST(!j.expand(empty, 16));
    BOOST_TEST((empty == Block{}));
}

// A large block followed by free address space can usually grow in place; whatever jemalloc
// decides, the answer must be consistent with the block's real size.
BOOST_AUTO_TEST_CASE(expand_large_blocks) {
    Jemalloc j;
    Block b = j.allocate(1u << 20, 16);
    fill(b.ptr, 1u << 20, 4);
    void* p = b.ptr;
    int grew = 0;
    for (std::size_t n = (1u << 20) + 4096; n <= (8u << 20); n *= 2) {
        Block before = b;
        if (j.expand(b, n)) {
            ++grew;
            BOOST_TEST(b.ptr == p);
            BOOST_TEST(b.size >= n);
            BOOST_TEST(b.size == Jemalloc::usable_size(p));
        } else {
            BOOST_TEST((b == before));
        }
    }
    BOOST_TEST(holds(b.ptr, 1u << 20, 4));
    BOOST_TEST_MESSAGE("large block grew in place " << grew << " times");
    // Shrinking a large block in place always works.
    BOOST_TEST(j.expand(b, 1u << 19));
    BOOST_TEST(b.ptr == p);
    BOOST_TEST(b.size >= (1u << 19));
    BOOST_TEST(b.size == Jemalloc::usable_size(p));
    BOOST_TEST(holds(b.ptr, 1u << 19, 4));
    j.deallocate(b);
}

BOOST_AUTO_TEST_CASE(zeroed_is_zero) {
    Jemalloc j;
    for (std::size_t n : {64u, 4096u, 100000u}) {
        Block d = j.allocate(n);
        fill(d.ptr, d.size, 5);
        j.deallocate(d);
    }
    for (std::size_t align : {16u, 64u, 4096u})
        for (std::size_t n : {0u, 1u, 64u, 4096u, 100000u}) {
            Block z = j.allocate_zeroed(n, align);
            BOOST_REQUIRE(z);
            BOOST_TEST(ca::is_aligned(z.ptr, align));
            const auto* c = static_cast<const unsigned char*>(z.ptr);
            std::size_t nonzero = 0;
            for (std::size_t i = 0; i < n; ++i) nonzero += c[i] != 0;
            BOOST_TEST(nonzero == 0u);
            j.deallocate(z);
        }
}

// A ranged Jemalloc owns what its arenas' range holds. Real arenas (extent hooks over a
// reserved range) are the preload's; here the range is a window chosen by the test.
namespace {
struct Window {
    std::uintptr_t lo = 0, hi = 0;
    int extra_flags = 0;
    bool owns(const void* p) const noexcept {
        return reinterpret_cast<std::uintptr_t>(p) - lo < hi - lo;
    }
    int flags() const noexcept { return extra_flags; }
};
using Ranged = ca::JemallocIn<Window>;
}  // namespace

static_assert(ca::JemallocArenas<Window> && !ca::JemallocArenas<ca::AnyArena>);
static_assert(ca::BlockOwner<Ranged> && ca::Reallocating<Ranged> && ca::UsableSize<Ranged> &&
              ca::AllocatingZeroed<Ranged>);
static_assert(!ca::BlockOwner<Jemalloc> && std::is_same_v<Jemalloc, ca::JemallocIn<>>);

BOOST_AUTO_TEST_CASE(ranged_owns_its_range_only) {
    Ranged all(Window{0, UINTPTR_MAX, 0});
    Block b = all.allocate(100);
    BOOST_REQUIRE(b);
    BOOST_TEST(all.owns(b.ptr));
    Ranged none(Window{1, 2, 0});
    BOOST_TEST(!none.owns(b.ptr));
    all.deallocate(b);
}

// A block outside the range is given back and the request fails, so a Fallback moves on and
// every pointer the ranged layer hands out is one it owns.
BOOST_AUTO_TEST_CASE(outside_the_range_falls_through) {
    ca::Fallback<Ranged, ca::System> fb{Ranged(Window{1, 2, 0}), ca::System{}};
    Block b = fb.allocate(100, 16);
    BOOST_REQUIRE(b);
    BOOST_TEST(!fb.primary().owns(b.ptr));
    fill(b.ptr, 100, 1);
    BOOST_TEST(fb.reallocate(b, 5000));
    BOOST_TEST(holds(b.ptr, 100, 1));
    fb.deallocate(b);  // to System, by owner
    BOOST_TEST(!fb.primary().allocate_zeroed(10, 16));
}

// Ranged reallocation stays in the range: in place in n's own class, else copy and free.
BOOST_AUTO_TEST_CASE(ranged_reallocate_keeps_the_contents) {
    Ranged r(Window{0, UINTPTR_MAX, 0});
    Block b = r.allocate(100);
    fill(b.ptr, 100, 2);
    for (std::size_t n : {200u, 5000u, 1u << 20, 50u, 1u}) {
        std::size_t keep = std::min<std::size_t>(n, 50);
        BOOST_TEST(r.reallocate(b, n));
        BOOST_TEST(b.size >= n);
        BOOST_TEST(b.size == Ranged::usable_size(b.ptr));
        BOOST_TEST(b.size == r.good_size(n));  // n's own class, not the old one's
        BOOST_TEST(holds(b.ptr, keep, 2));
        fill(b.ptr, std::min<std::size_t>(b.size, 50), 2);
    }
    r.deallocate(b);
}
