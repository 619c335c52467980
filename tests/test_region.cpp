#define BOOST_TEST_MODULE region
#include <boost/test/unit_test.hpp>

#include <chainalloc/fallback.hpp>
#include <chainalloc/region.hpp>

#include "conformance.hpp"

#include <algorithm>
#include <thread>
#include <vector>

namespace ca = chainalloc;
using ca::Block;
using ca::testing::fill;
using ca::testing::holds;

using Small = ca::Region<ca::InlineStorage<4096>>;
using Shared = ca::Region<ca::InlineStorage<1 << 16>, ca::AtomicBump>;
using Outside = ca::Region<ca::ExternalStorage>;

static_assert(ca::BlockOwner<Small> && ca::UsableSize<Small> && ca::DeallocatingAll<Small>);
static_assert(!ca::Reallocating<Small> && !ca::TryDeallocating<Small> && !ca::AllocatingZeroed<Small>);
static_assert(ca::BlockOwner<Outside> && ca::BlockOwner<Shared>);

// In static storage with no constructor to run (as the preload's bootstrap arena must be).
constinit Shared g_static_region;

BOOST_AUTO_TEST_CASE(bump_with_headers) {
    Small r;
    Block a = r.allocate(1, 1);
    Block b = r.allocate(100, 64);
    Block c = r.allocate(0, 16);
    BOOST_REQUIRE((a && b && c));
    BOOST_TEST(a.size == 16u);
    BOOST_TEST(b.size == 112u);
    BOOST_TEST(c.size == 16u);  // a 0-byte request has its own address
    BOOST_TEST(ca::is_aligned(a.ptr, 16));
    BOOST_TEST(ca::is_aligned(b.ptr, 64));
    BOOST_TEST(Small::usable_size(b.ptr) == b.size);
    BOOST_TEST(r.usable_size(a.ptr) == a.size);
    BOOST_TEST(static_cast<char*>(b.ptr) >= static_cast<char*>(a.ptr) + a.size + Small::kHeader);
    fill(b.ptr, b.size, 3);
    BOOST_TEST(Small::usable_size(c.ptr) == 16u);  // a neighbour's writes leave the header
    BOOST_TEST(holds(b.ptr, b.size, 3));
    BOOST_TEST(r.owns(a.ptr));
    BOOST_TEST(r.owns(static_cast<char*>(c.ptr) + 15));
    BOOST_TEST(!ca::testing::owns_own_stack_address(r));
    r.deallocate(b);  // a no-op
    BOOST_TEST(r.used() == static_cast<std::size_t>(static_cast<char*>(c.ptr) + 16 - r.storage().base()));
}

BOOST_AUTO_TEST_CASE(full_then_reset) {
    Small r;
    std::size_t n = 0;
    while (r.allocate(48, 16)) ++n;
    BOOST_TEST(n == 4096u / 64);  // 48 bytes and a 16-byte header each
    BOOST_TEST(!r.allocate(1, 16).ptr);
    BOOST_TEST(!r.allocate(5000, 16).ptr);
    BOOST_TEST(!r.allocate(16, 8192).ptr);
    r.deallocate_all();
    BOOST_TEST(r.used() == 0u);
    Block again = r.allocate(4000, 16);
    BOOST_TEST(again.ptr != nullptr);
}

BOOST_AUTO_TEST_CASE(buffer_from_a_parent) {
    ca::testing::HeapParent parent;
    Block buf = parent.allocate(1000, 16);
    {
        Outside r{ca::ExternalStorage(buf)};
        BOOST_TEST(r.capacity() == 1000u);
        Block b = r.allocate(500, 16);
        BOOST_TEST(r.owns(b.ptr));
        BOOST_TEST(b.ptr == static_cast<char*>(buf.ptr) + 16);
        BOOST_TEST(!r.allocate(500, 16).ptr);  // 16 + 512 + 16 + 512 > 1000
        BOOST_TEST(!Outside{}.allocate(1, 16).ptr);  // no buffer: fails, never throws
        BOOST_TEST(!Outside{}.owns(b.ptr));
    }
    parent.deallocate(buf);
}

// Any thread, any time: every block is whole and no two overlap.
BOOST_AUTO_TEST_CASE(atomic_bump_from_threads) {
    g_static_region.deallocate_all();
    std::vector<std::vector<Block>> got(4);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            while (Block b = g_static_region.allocate(16 + t * 16, 16)) {
                fill(b.ptr, b.size, t);
                got[t].push_back(b);
            }
        });
    for (auto& th : threads) th.join();
    std::vector<Block> all;
    for (unsigned t = 0; t < 4; ++t)
        for (Block b : got[t]) {
            BOOST_TEST(holds(b.ptr, b.size, t));
            BOOST_TEST(Shared::usable_size(b.ptr) == b.size);
            all.push_back(b);
        }
    std::sort(all.begin(), all.end(), [](Block x, Block y) { return x.ptr < y.ptr; });
    for (std::size_t i = 1; i < all.size(); ++i)
        BOOST_TEST(static_cast<char*>(all[i - 1].ptr) + all[i - 1].size + Shared::kHeader <=
                   static_cast<char*>(all[i].ptr));
    BOOST_TEST(g_static_region.used() <= g_static_region.capacity());
    BOOST_TEST(g_static_region.used() > g_static_region.capacity() - 80);  // filled to the end
}

// A region over a parent's block composes: first the region, then the parent's heap.
BOOST_AUTO_TEST_CASE(region_in_front_of_a_fallback) {
    static_assert(std::is_move_constructible_v<Outside> && !std::is_move_constructible_v<Small>);
    ca::testing::HeapParent heap;
    Block buf = heap.allocate(256, 16);
    {
        ca::Fallback<Outside, ca::testing::HeapParent> fb{Outside{ca::ExternalStorage(buf)}, heap};
        Block a = fb.allocate(100, 16);  // 16 + 112
        Block b = fb.allocate(100, 16);  // 16 + 112: 256 used
        Block c = fb.allocate(100, 16);  // the heap's
        BOOST_TEST(fb.primary().owns(a.ptr));
        BOOST_TEST(fb.primary().owns(b.ptr));
        BOOST_TEST(!fb.primary().owns(c.ptr));
        BOOST_TEST(fb.primary().used() == 256u);
        fb.deallocate(c);  // to the heap, by owner
        fb.deallocate(a);  // a no-op
        fb.deallocate(b);
    }
    heap.deallocate(buf);
}
