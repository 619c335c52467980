#define BOOST_TEST_MODULE free_list
#include <boost/test/unit_test.hpp>

#include <chainalloc/free_list.hpp>

#include "checking_allocator.hpp"
#include "conformance.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <set>
#include <utility>
#include <vector>

using chainalloc::Block;
using chainalloc::FreeList;
using chainalloc::testing::CheckingAllocator;
using chainalloc::testing::fill;
using chainalloc::testing::holds;
using chainalloc::testing::HeapParent;
using chainalloc::testing::Ref;
namespace ca = chainalloc;

using List = FreeList<ca::System>;
using Checker = CheckingAllocator<HeapParent>;
using CheckedList = FreeList<Ref<Checker>>;

static_assert(ca::BlockOwner<List> && ca::Expanding<List> && ca::GoodSize<List> &&
              ca::DeallocatingAll<List> && !ca::Reallocating<List>);
static_assert(std::is_nothrow_move_constructible_v<List> && !std::is_copy_constructible_v<List>);

namespace {

// Allocates until the list says no; every block checked on the way.
std::vector<Block> drain(List& fl, std::size_t n, std::size_t align = 1) {
    std::vector<Block> out;
    while (Block b = fl.allocate(n, align)) out.push_back(b);
    return out;
}

}  // namespace

// The seed's example: 64 blocks of 1 KiB, ten rounds; the 65th request fails each time, and
// every block comes back for the next round.
BOOST_AUTO_TEST_CASE(seed_example_ten_rounds) {
    List fl(1024, 64);
    BOOST_REQUIRE(fl.ready());
    BOOST_TEST(fl.block_size() == 1024u);
    BOOST_TEST(fl.capacity() == 64u);
    std::set<void*> first_round;
    for (int round = 0; round < 10; ++round) {
        BOOST_TEST(fl.available() == 64u);
        std::vector<Block> blocks;
        for (unsigned i = 0; i < 64; ++i) {
            Block b = fl.allocate(1024, ca::kMinAlign);
            BOOST_REQUIRE(b);
            BOOST_TEST(b.size == 1024u);
            BOOST_TEST(ca::is_aligned(b.ptr, ca::kMinAlign));
            BOOST_TEST(fl.owns(b.ptr));
            fill(b.ptr, b.size, i + 100u * round);  // its index (and the round)
            blocks.push_back(b);
        }
        BOOST_TEST(fl.available() == 0u);
        BOOST_TEST((fl.allocate(1, 1) == Block{}));  // the 65th
        BOOST_TEST((fl.allocate(1024, 16) == Block{}));
        // No block overlaps another: each still holds its own index.
        for (unsigned i = 0; i < 64; ++i) BOOST_TEST(holds(blocks[i].ptr, 1024, i + 100u * round));
        std::set<void*> addresses;
        for (Block b : blocks) addresses.insert(b.ptr);
        BOOST_TEST(addresses.size() == 64u);
        if (round == 0)
            first_round = addresses;
        else
            BOOST_TEST((addresses == first_round));
        // Alternate the order blocks come back in: any order must restore the whole list.
        if (round % 2) std::reverse(blocks.begin(), blocks.end());
        for (Block b : blocks) fl.deallocate(b);
    }
}

BOOST_AUTO_TEST_CASE(block_size_rounds_up_to_a_link) {
    BOOST_TEST(List(0, 4).block_size() == sizeof(void*));
    BOOST_TEST(List(1, 4).block_size() == 8u);
    BOOST_TEST(List(8, 4).block_size() == 8u);
    BOOST_TEST(List(9, 4).block_size() == 16u);
    BOOST_TEST(List(24, 4).block_size() == 24u);
    BOOST_TEST(List(25, 4).block_size() == 32u);
    BOOST_TEST(List(1000, 4).block_size() == 1000u);
    BOOST_TEST(List(1001, 4).block_size() == 1008u);
    // A rounded block serves the rounded size.
    List fl(9, 4);
    Block b = fl.allocate(16, 8);
    BOOST_REQUIRE(b);
    BOOST_TEST(b.size == 16u);
    BOOST_TEST(!fl.allocate(17, 8));
}

// Blocks are aligned to the largest power of two dividing the block size (at most 4096), and
// a request for more alignment than that fails cleanly.
BOOST_AUTO_TEST_CASE(alignment_follows_block_size) {
    struct Case {
        std::size_t block, align;
    };
    for (Case c : {Case{8, 8}, Case{24, 8}, Case{48, 16}, Case{96, 32}, Case{1024, 1024},
                   Case{3 * 4096, 4096}, Case{8192, 4096}}) {
        BOOST_TEST_CONTEXT("block " << c.block) {
            List fl(c.block, 8);
            BOOST_REQUIRE(fl.ready());
            std::vector<Block> blocks = drain(fl, 1);  // asking for little alignment...
            for (Block b : blocks) {
                BOOST_TEST(ca::is_aligned(b.ptr, c.align));  // ...still gives this much
                fl.deallocate(b);
            }
            BOOST_TEST(blocks.size() == 8u);
            for (std::size_t a = 1; a <= c.align; a *= 2) {
                Block b = fl.allocate(1, a);
                BOOST_TEST(ca::is_aligned(b.ptr, a));
                BOOST_TEST(static_cast<bool>(b));
                fl.deallocate(b);
            }
            BOOST_TEST((fl.allocate(1, c.align * 2) == Block{}));
            BOOST_TEST(fl.available() == 8u);
        }
    }
}

BOOST_AUTO_TEST_CASE(zero_bytes_take_a_block) {
    List fl(64, 2);
    Block b = fl.allocate(0, 1);
    BOOST_REQUIRE(b);
    BOOST_TEST(b.size == 64u);
    BOOST_TEST(fl.available() == 1u);
    fl.deallocate(b);
    fl.deallocate(Block{});  // the empty block is harmless
    BOOST_TEST(fl.available() == 2u);
}

BOOST_AUTO_TEST_CASE(bigger_than_a_block_fails) {
    List fl(256, 4);
    BOOST_TEST((fl.allocate(257, 16) == Block{}));
    BOOST_TEST((fl.allocate(SIZE_MAX, 16) == Block{}));
    BOOST_TEST(fl.available() == 4u);  // a failure takes nothing
    BOOST_TEST(static_cast<bool>(fl.allocate(256, 16)));
}

BOOST_AUTO_TEST_CASE(owns_true_for_blocks_false_for_foreign) {
    Checker parent;
    CheckedList fl(128, 16, Ref<Checker>(parent));
    BOOST_REQUIRE(fl.ready());
    std::vector<Block> blocks;
    while (Block b = fl.allocate(128, 16)) blocks.push_back(b);
    BOOST_REQUIRE(blocks.size() == 16u);
    auto lowest = static_cast<char*>(std::min_element(blocks.begin(), blocks.end(), [](Block a, Block b) {
                                         return a.ptr < b.ptr;
                                     })->ptr);
    for (Block b : blocks) {
        BOOST_TEST(fl.owns(b.ptr));
        BOOST_TEST(fl.owns(static_cast<char*>(b.ptr) + 127));  // any byte inside
    }
    int local = 0;
    auto heap = std::make_unique<int>(0);
    BOOST_TEST(!fl.owns(&local));
    BOOST_TEST(!fl.owns(heap.get()));
    BOOST_TEST(!fl.owns(nullptr));
    BOOST_TEST(!fl.owns(lowest - 1));
    BOOST_TEST(!fl.owns(lowest + 16 * 128));  // one past the last block
    BOOST_TEST(!ca::testing::owns_own_stack_address(fl));
    for (Block b : blocks) fl.deallocate(b);
}

BOOST_AUTO_TEST_CASE(lifo_reuse) {
    List fl(64, 8);
    Block a = fl.allocate(64, 16);
    Block b = fl.allocate(64, 16);
    fl.deallocate(a);
    fl.deallocate(b);
    BOOST_TEST(fl.allocate(64, 16).ptr == b.ptr);  // last in, first out
    BOOST_TEST(fl.allocate(64, 16).ptr == a.ptr);
}

BOOST_AUTO_TEST_CASE(expand_within_a_block) {
    List fl(256, 4);
    Block b = fl.allocate(10, 16);
    BOOST_REQUIRE(b);
    fill(b.ptr, 10, 1);
    b.size = 10;  // as a caller remembering its request would pass it
    BOOST_TEST(fl.expand(b, 200));
    BOOST_TEST(b.size == 256u);
    BOOST_TEST(fl.expand(b, 256));
    BOOST_TEST(fl.expand(b, 1));  // shrinking in place keeps the whole block
    BOOST_TEST(b.size == 256u);
    const Block before = b;
    BOOST_TEST(!fl.expand(b, 257));
    BOOST_TEST((b == before));
    BOOST_TEST(holds(b.ptr, 10, 1));
    // Through the generic reallocate: in place when it fits, a clean failure when not.
    BOOST_TEST(ca::reallocate(fl, b, 100));
    BOOST_TEST(b.ptr == before.ptr);
    BOOST_TEST(!ca::reallocate(fl, b, 1000));
    BOOST_TEST((b == before));
    BOOST_TEST(fl.available() == 3u);
    fl.deallocate(b);
}

// An empty block has nothing to expand: reallocate of an empty block must allocate a real one.
BOOST_AUTO_TEST_CASE(expand_of_empty_block_fails) {
    List fl(256, 4);
    Block empty;
    BOOST_TEST(!fl.expand(empty, 16));
    BOOST_TEST((empty == Block{}));
    Block b;
    BOOST_TEST(ca::reallocate(fl, b, 100));
    BOOST_TEST(b.ptr != nullptr);
    BOOST_TEST(fl.owns(b.ptr));
    BOOST_TEST(fl.available() == 3u);
    fl.deallocate(b);
}

BOOST_AUTO_TEST_CASE(good_size_is_the_block) {
    List fl(96, 4);
    BOOST_TEST(fl.good_size(0) == 96u);
    BOOST_TEST(fl.good_size(1) == 96u);
    BOOST_TEST(fl.good_size(96) == 96u);
    BOOST_TEST(fl.good_size(97) == 0u);  // cannot be served at all
}

BOOST_AUTO_TEST_CASE(deallocate_all_restores_every_block) {
    List fl(512, 32);
    std::vector<Block> first = drain(fl, 512);
    BOOST_REQUIRE(first.size() == 32u);
    void* lowest = std::min_element(first.begin(), first.end(), [](Block a, Block b) {
                       return a.ptr < b.ptr;
                   })->ptr;
    fl.deallocate_all();  // none given back one by one
    BOOST_TEST(fl.available() == 32u);
    // Lowest address first, then all 32 distinct blocks again.
    std::vector<Block> again = drain(fl, 512);
    BOOST_TEST(again.size() == 32u);
    BOOST_TEST(again.front().ptr == lowest);
    std::set<void*> a, b;
    for (Block x : first) a.insert(x.ptr);
    for (Block x : again) b.insert(x.ptr);
    BOOST_TEST((a == b));
    BOOST_TEST(b.size() == 32u);
    // Also after partial frees (no block counted twice).
    fl.deallocate(again[0]);
    fl.deallocate(again[1]);
    fl.deallocate_all();
    BOOST_TEST(fl.available() == 32u);
    BOOST_TEST(drain(fl, 1).size() == 32u);
}

BOOST_AUTO_TEST_CASE(parent_gives_one_region_and_gets_it_back) {
    Checker parent;
    {
        CheckedList fl(1024, 64, Ref<Checker>(parent));
        BOOST_REQUIRE(fl.ready());
        BOOST_TEST(parent.allocations() == 1u);
        BOOST_TEST(parent.live_count() == 1u);
        BOOST_TEST(parent.live_bytes() == 64u * 1024);
        BOOST_TEST(parent.live_blocks().at(0).align == 1024u);  // so blocks are aligned
        for (int i = 0; i < 3; ++i) {
            std::vector<Block> bs;
            while (Block b = fl.allocate(1024, 16)) bs.push_back(b);
            BOOST_TEST(bs.size() == 64u);
            for (Block b : bs) fl.deallocate(b);
        }
        BOOST_TEST(parent.allocations() == 1u);  // never grows
    }
    BOOST_TEST(parent.errors() == 0u, parent.last_error());
    BOOST_TEST(parent.live_count() == 0u);
    BOOST_TEST(parent.deallocations() == 1u);
}

BOOST_AUTO_TEST_CASE(parent_failure_means_not_ready) {
    Checker parent;
    parent.fail_after(0);
    {
        CheckedList fl(64, 16, Ref<Checker>(parent));
        BOOST_TEST(!fl.ready());
        BOOST_TEST(fl.capacity() == 0u);
        BOOST_TEST(fl.available() == 0u);
        BOOST_TEST((fl.allocate(8, 8) == Block{}));
        int local;
        BOOST_TEST(!fl.owns(&local));
        BOOST_TEST(!fl.owns(nullptr));
    }
    BOOST_TEST(parent.errors() == 0u, parent.last_error());
    BOOST_TEST(parent.deallocations() == 0u);  // nothing to give back
}

BOOST_AUTO_TEST_CASE(zero_count_and_overflow_ask_nothing) {
    Checker parent;
    {
        CheckedList none(64, 0, Ref<Checker>(parent));
        BOOST_TEST(!none.ready());
        BOOST_TEST(!none.allocate(1, 1));
        CheckedList huge(SIZE_MAX / 2, 4, Ref<Checker>(parent));
        BOOST_TEST(!huge.ready());
    }
    BOOST_TEST(parent.allocations() == 0u);
    BOOST_TEST(parent.errors() == 0u);
}

BOOST_AUTO_TEST_CASE(move_keeps_the_blocks) {
    Checker parent;
    {
        CheckedList a(256, 8, Ref<Checker>(parent));
        Block held = a.allocate(256, 16);
        BOOST_REQUIRE(held);
        fill(held.ptr, 256, 9);
        CheckedList b(std::move(a));
        // The moved-from list is empty and safe.
        BOOST_TEST(!a.ready());
        BOOST_TEST(a.capacity() == 0u);
        BOOST_TEST(a.available() == 0u);
        BOOST_TEST(!a.allocate(1, 1));
        BOOST_TEST(!a.owns(held.ptr));
        // The new one owns the same region and the block handed out before the move.
        BOOST_TEST(b.ready());
        BOOST_TEST(b.owns(held.ptr));
        BOOST_TEST(b.available() == 7u);
        BOOST_TEST(holds(held.ptr, 256, 9));
        b.deallocate(held);
        BOOST_TEST(b.available() == 8u);
        BOOST_TEST(b.allocate(256, 16).ptr == held.ptr);
    }
    // One region, given back exactly once.
    BOOST_TEST(parent.errors() == 0u, parent.last_error());
    BOOST_TEST(parent.allocations() == 1u);
    BOOST_TEST(parent.deallocations() == 1u);
    BOOST_TEST(parent.live_count() == 0u);
}
