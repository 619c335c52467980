#define BOOST_TEST_MODULE fallback
#include <boost/test/unit_test.hpp>

#include <chainalloc/fallback.hpp>
#include <chainalloc/free_list.hpp>
#include <chainalloc/null.hpp>
#include <chainalloc/system.hpp>

#include "checking_allocator.hpp"
#include "conformance.hpp"

#include <vector>

using chainalloc::Block;
using chainalloc::Fallback;
using chainalloc::Null;
using chainalloc::System;
using chainalloc::testing::CheckingAllocator;
using chainalloc::testing::fill;
using chainalloc::testing::HeapParent;
using chainalloc::testing::holds;
using chainalloc::testing::Ref;
namespace ca = chainalloc;

using List = ca::FreeList<ca::System>;
using SysChecker = CheckingAllocator<System>;     // reallocates (glibc's realloc)
using HeapChecker = CheckingAllocator<HeapParent>;  // cannot: moves go through the composite

template <class P, class S>
concept CanCompose = requires { typename Fallback<P, S>; };

// Abilities: only what both parts allow.
static_assert(CanCompose<List, System> && !CanCompose<System, List>,
              "the primary must say which blocks are its own");
static_assert(!ca::BlockOwner<Fallback<List, System>>);
static_assert(ca::BlockOwner<Fallback<List, List>>);
static_assert(ca::BlockOwner<Fallback<List, Null>>);
static_assert(ca::DeallocatingAll<Fallback<List, List>> && !ca::DeallocatingAll<Fallback<List, System>>);
static_assert(ca::Reallocating<Fallback<List, System>>);
static_assert(!ca::Expanding<Fallback<List, System>> && !ca::GoodSize<Fallback<List, System>>);

namespace {

template <class S>
struct Chain {
    S checker;
    Fallback<List, Ref<S>> fb{List(256, 4), Ref<S>(checker)};
    List& primary() { return fb.primary(); }
    ~Chain() {
        BOOST_TEST(checker.errors() == 0u, checker.last_error());
        BOOST_TEST(checker.live_count() == 0u);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(primary_first_then_secondary) {
    Chain<SysChecker> c;
    std::vector<Block> blocks;
    for (int i = 0; i < 4; ++i) {
        Block b = c.fb.allocate(100, 16);
        BOOST_REQUIRE(b);
        BOOST_TEST(c.primary().owns(b.ptr));
        BOOST_TEST(b.size == 256u);
        blocks.push_back(b);
    }
    BOOST_TEST(c.checker.allocations() == 0u);  // the secondary not asked yet
    Block fifth = c.fb.allocate(100, 16);        // primary exhausted
    BOOST_REQUIRE(fifth);
    BOOST_TEST(!c.primary().owns(fifth.ptr));
    BOOST_TEST(c.checker.is_live(fifth.ptr));
    BOOST_TEST(c.checker.allocations() == 1u);
    c.fb.deallocate(blocks[0]);
    Block again = c.fb.allocate(100, 16);  // primary has room again: it comes first
    BOOST_TEST(again.ptr == blocks[0].ptr);
    BOOST_TEST(c.checker.allocations() == 1u);
    blocks[0] = again;
    for (Block b : blocks) c.fb.deallocate(b);
    c.fb.deallocate(fifth);
    BOOST_TEST(c.checker.live_count() == 0u);
    BOOST_TEST(c.primary().available() == 4u);
}

BOOST_AUTO_TEST_CASE(what_the_primary_cannot_serve_goes_on) {
    Chain<SysChecker> c;
    Block big = c.fb.allocate(1000, 16);  // larger than a block
    BOOST_REQUIRE(big);
    BOOST_TEST(c.checker.is_live(big.ptr));
    Block aligned;
    {
        aligned = c.fb.allocate(16, 512);  // more than a 256-byte block's alignment
        BOOST_REQUIRE(aligned);
        BOOST_TEST(c.checker.is_live(aligned.ptr));
        BOOST_TEST(ca::is_aligned(aligned.ptr, 512));
    }
    BOOST_TEST(c.primary().available() == 4u);
    c.fb.deallocate(big);
    c.fb.deallocate(aligned);
    BOOST_TEST(c.checker.live_count() == 0u);
}

// The secondary is a CheckingAllocator: a primary block routed to it would be flagged as
// unknown, and a secondary block routed to the primary would show up in its count.
BOOST_AUTO_TEST_CASE(deallocate_routes_by_owns) {
    Chain<SysChecker> c;
    std::vector<Block> mixed;
    for (int i = 0; i < 10; ++i) mixed.push_back(c.fb.allocate(64, 16));
    BOOST_TEST(c.checker.live_count() == 6u);
    BOOST_TEST(c.primary().available() == 0u);
    for (int i = 9; i >= 0; --i) c.fb.deallocate(mixed[i]);
    BOOST_TEST(c.checker.deallocations() == 6u);
    BOOST_TEST(c.checker.live_count() == 0u);
    BOOST_TEST(c.primary().available() == 4u);
    c.fb.deallocate(Block{});  // harmless, reaches neither
    BOOST_TEST(c.checker.deallocations() == 6u);
    BOOST_TEST(c.primary().available() == 4u);
}

BOOST_AUTO_TEST_CASE(reallocate_in_place_within_the_primary) {
    Chain<SysChecker> c;
    Block b = c.fb.allocate(10, 16);
    fill(b.ptr, 10, 1);
    void* p = b.ptr;
    BOOST_TEST(c.fb.reallocate(b, 200));
    BOOST_TEST(b.ptr == p);
    BOOST_TEST(b.size == 256u);
    BOOST_TEST(c.checker.allocations() == 0u);
    BOOST_TEST(holds(b.ptr, 10, 1));
    c.fb.deallocate(b);
}

// FreeList -> System when the block outgrows the list; a System block then stays with
// System (its realloc works in place or moves within it).
BOOST_AUTO_TEST_CASE(reallocate_across_to_the_secondary) {
    Chain<SysChecker> c;
    Block b = c.fb.allocate(200, 16);
    BOOST_REQUIRE(c.primary().owns(b.ptr));
    fill(b.ptr, 200, 2);
    BOOST_TEST(c.fb.reallocate(b, 5000));
    BOOST_TEST(!c.primary().owns(b.ptr));
    BOOST_TEST(c.checker.is_live(b.ptr));
    BOOST_TEST(b.size >= 5000u);
    BOOST_TEST(holds(b.ptr, 200, 2));
    BOOST_TEST(c.primary().available() == 4u);  // the list block went back
    fill(b.ptr, 5000, 3);
    BOOST_TEST(c.fb.reallocate(b, 100000));
    BOOST_TEST(holds(b.ptr, 5000, 3));
    BOOST_TEST(c.fb.reallocate(b, 100));  // System's own realloc: stays there
    BOOST_TEST(c.checker.is_live(b.ptr));
    BOOST_TEST(holds(b.ptr, 100, 3));
    c.fb.deallocate(b);
    BOOST_TEST(c.checker.live_count() == 0u);
}

// A secondary that cannot resize in place: shrinking goes through the composite, so the
// block comes back to the primary, contents and all.
BOOST_AUTO_TEST_CASE(reallocate_across_and_back) {
    Chain<HeapChecker> c;
    static_assert(!ca::Reallocating<Ref<HeapChecker>> && !ca::Expanding<Ref<HeapChecker>>);
    Block b = c.fb.allocate(64, 16);
    fill(b.ptr, 64, 4);
    BOOST_TEST(c.fb.reallocate(b, 3000));  // FreeList -> heap
    BOOST_TEST(c.checker.is_live(b.ptr));
    BOOST_TEST(holds(b.ptr, 64, 4));
    fill(b.ptr, 3000, 5);
    BOOST_TEST(c.fb.reallocate(b, 128));  // heap -> FreeList
    BOOST_TEST(c.primary().owns(b.ptr));
    BOOST_TEST(holds(b.ptr, 128, 5));
    BOOST_TEST(c.checker.live_count() == 0u);
    BOOST_TEST(c.checker.deallocations() == 1u);
    c.fb.deallocate(b);
    BOOST_TEST(c.primary().available() == 4u);
}

BOOST_AUTO_TEST_CASE(reallocate_empty_block_allocates) {
    Chain<SysChecker> c;
    Block b;
    BOOST_TEST(c.fb.reallocate(b, 64));
    BOOST_TEST(c.primary().owns(b.ptr));  // primary first, as allocate does
    Block big;
    BOOST_TEST(c.fb.reallocate(big, 4096));
    BOOST_TEST(c.checker.is_live(big.ptr));
    c.fb.deallocate(b);
    c.fb.deallocate(big);
}

BOOST_AUTO_TEST_CASE(reallocate_failure_leaves_block) {
    Fallback<List, Null> fb{List(256, 2), Null{}};
    Block b = fb.allocate(256, 16);
    fill(b.ptr, 256, 6);
    const Block before = b;
    BOOST_TEST(!fb.reallocate(b, 257));  // no room anywhere
    BOOST_TEST((b == before));
    BOOST_TEST(holds(b.ptr, 256, 6));
    BOOST_TEST(fb.primary().available() == 1u);
    // Secondary failing to move while the primary is full, too.
    Chain<SysChecker> c;
    std::vector<Block> full;
    for (int i = 0; i < 4; ++i) full.push_back(c.fb.allocate(16, 16));
    fill(full[0].ptr, 16, 7);
    const Block full_before = full[0];
    c.checker.fail_after(0);
    BOOST_TEST(!c.fb.reallocate(full[0], 1000));  // would need the secondary, which fails
    BOOST_TEST((full[0] == full_before));
    BOOST_TEST(holds(full[0].ptr, 16, 7));
    c.checker.fail_after(-1);
    for (Block x : full) c.fb.deallocate(x);
}

BOOST_AUTO_TEST_CASE(owns_when_both_own) {
    Fallback<List, List> fb{List(64, 2), List(1024, 2)};
    Block a = fb.allocate(64, 16);
    Block b = fb.allocate(64, 16);
    Block c = fb.allocate(64, 16);  // the second list
    BOOST_REQUIRE(c);
    BOOST_TEST(fb.primary().owns(a.ptr));
    BOOST_TEST(fb.secondary().owns(c.ptr));
    for (Block x : {a, b, c}) BOOST_TEST(fb.owns(x.ptr));
    int local;
    BOOST_TEST(!fb.owns(&local));
    BOOST_TEST(!fb.owns(nullptr));
    BOOST_TEST(!ca::testing::owns_own_stack_address(fb));
    // deallocate_all resets both.
    fb.deallocate_all();
    BOOST_TEST(fb.primary().available() == 2u);
    BOOST_TEST(fb.secondary().available() == 2u);
}

BOOST_AUTO_TEST_CASE(null_primary_is_neutral) {
    SysChecker checker;
    {
        Fallback<Null, Ref<SysChecker>> fb{Null{}, Ref<SysChecker>(checker)};
        Block b = fb.allocate(100, 16);
        BOOST_TEST(checker.is_live(b.ptr));
        BOOST_TEST(fb.reallocate(b, 1000));
        BOOST_TEST(checker.is_live(b.ptr));
        fb.deallocate(b);
    }
    BOOST_TEST(checker.errors() == 0u, checker.last_error());
    BOOST_TEST(checker.live_count() == 0u);
}
