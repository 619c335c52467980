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

// The new abilities: usable_size when both parts answer it, zeroing when either part has its
// own, try_deallocate when the secondary can tell its blocks, hooks when either part has them.
using ca::testing::Hooked;
static_assert(ca::UsableSize<Fallback<List, System>> && ca::UsableSize<Fallback<List, List>>);
static_assert(!ca::UsableSize<Fallback<List, HeapChecker>>);
static_assert(ca::AllocatingZeroed<Fallback<List, System>> && !ca::AllocatingZeroed<Fallback<List, List>>);
static_assert(ca::TryDeallocating<Fallback<List, List>> && ca::TryDeallocating<Fallback<List, Null>>);
static_assert(!ca::TryDeallocating<Fallback<List, System>>);
static_assert(!ca::ForkAware<Fallback<List, System>> && !ca::ThreadFlushing<Fallback<List, System>>);
static_assert(ca::ForkAware<Fallback<Hooked<List>, System>> && ca::ForkAware<Fallback<List, Hooked<>>>);
static_assert(ca::ThreadFlushing<Fallback<Hooked<List>, System>> && ca::ThreadFlushing<Fallback<List, Hooked<>>>);

BOOST_AUTO_TEST_CASE(usable_size_by_owner) {
    Fallback<List, List> fb{List(64, 2), List(1024, 2)};
    Block small = fb.allocate(10, 16);
    Block big = fb.allocate(100, 16);
    BOOST_TEST(fb.usable_size(small.ptr) == 64u);
    BOOST_TEST(fb.usable_size(big.ptr) == 1024u);
    fb.deallocate(small);
    fb.deallocate(big);
}

BOOST_AUTO_TEST_CASE(try_deallocate_routes_in_one_call_per_part) {
    Fallback<List, List> fb{List(64, 2), List(1024, 2)};
    Block a = fb.allocate(10, 16);
    Block b = fb.allocate(100, 16);
    alignas(16) char foreign[64];
    BOOST_TEST(!fb.try_deallocate(Block{foreign, sizeof foreign}));
    BOOST_TEST(!fb.try_deallocate(Block{}));
    BOOST_TEST(fb.primary().available() == 1u);
    BOOST_TEST(fb.try_deallocate(a));
    BOOST_TEST(fb.primary().available() == 2u);
    BOOST_TEST(fb.try_deallocate(b));
    BOOST_TEST(fb.secondary().available() == 2u);
}

// The list has no zeroing of its own (memset, whole block); System's is calloc.
BOOST_AUTO_TEST_CASE(allocate_zeroed_each_part_its_way) {
    Fallback<List, System> fb{List(256, 2), System{}};
    Block d = fb.allocate(256, 16);
    fill(d.ptr, d.size, 3);
    fb.deallocate(d);
    auto zero = [](Block z) {
        const auto* c = static_cast<const unsigned char*>(z.ptr);
        std::size_t nonzero = 0;
        for (std::size_t i = 0; i < z.size; ++i) nonzero += c[i] != 0;
        return z && nonzero == 0;
    };
    Block z1 = fb.allocate_zeroed(10, 16);
    BOOST_TEST(fb.primary().owns(z1.ptr));
    BOOST_TEST(zero(z1));
    Block z2 = fb.allocate_zeroed(1000, 16);
    BOOST_TEST(!fb.primary().owns(z2.ptr));
    BOOST_TEST(zero(Block{z2.ptr, 1000}));
    fb.deallocate(z1);
    fb.deallocate(z2);

    // The generic helper on a composite without any zeroing of its own.
    Fallback<List, List> lists{List(64, 1), List(128, 1)};
    Block d2 = lists.allocate(64, 16);
    fill(d2.ptr, d2.size, 4);
    lists.deallocate(d2);
    Block z3 = ca::allocate_zeroed(lists, 8);
    BOOST_TEST(zero(z3));
    lists.deallocate(z3);
}

// prepare outer to inner, parent and child inner to outer; a part without hooks is skipped.
BOOST_AUTO_TEST_CASE(fork_hooks_in_lock_order) {
    std::string trace;
    Fallback<Hooked<List>, Hooked<>> fb{Hooked<List>(64, 2), Hooked<>{}};
    fb.primary().traced(trace, 'P');
    fb.secondary().traced(trace, 'S');
    fb.fork_prepare();
    fb.fork_parent();
    BOOST_TEST(trace == "pPpSaSaP");
    trace.clear();
    fb.fork_prepare();
    fb.fork_child();
    BOOST_TEST(trace == "pPpScScP");
    trace.clear();
    fb.flush_thread();
    BOOST_TEST(trace == "fPfS");

    Fallback<List, Hooked<>> one{List(64, 2), Hooked<>{}};
    one.secondary().traced(trace, 'S');
    trace.clear();
    one.fork_prepare();
    one.fork_child();
    one.flush_thread();
    BOOST_TEST(trace == "pScSfS");
}
