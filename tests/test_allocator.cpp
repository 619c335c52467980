#define BOOST_TEST_MODULE allocator
#include <boost/test/unit_test.hpp>

#include <chainalloc/allocator.hpp>

#include "checking_allocator.hpp"
#include "conformance.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

using chainalloc::Block;
using chainalloc::testing::CheckingAllocator;
using chainalloc::testing::fill;
using chainalloc::testing::holds;
namespace ca = chainalloc;

namespace {

// Minimal allocators with a chosen set of abilities, counting which path the helpers took.
struct Calls {
    int allocate = 0, deallocate = 0, reallocate = 0, expand = 0;
};

struct Plain {
    Calls* calls;
    bool fail = false;
    Block allocate(std::size_t n, std::size_t) {
        ++calls->allocate;
        if (fail) return {};
        // Room behind every block, so WithExpand's pretend in-place growth is real memory.
        return {std::malloc(std::max<std::size_t>(n, 256)), n};
    }
    void deallocate(Block b) {
        ++calls->deallocate;
        std::free(b.ptr);
    }
};

struct WithRealloc : Plain {
    bool reallocate(Block& b, std::size_t n) {
        ++calls->reallocate;
        void* p = std::realloc(b.ptr, n ? n : 1);
        if (!p) return false;
        b = {p, n};
        return true;
    }
};

// Expands only up to `room` bytes (as if the block had slack behind it).
struct WithExpand : Plain {
    std::size_t room = 0;
    bool expand(Block& b, std::size_t n) {
        ++calls->expand;
        if (!b.ptr || n > room) return false;
        b.size = n;
        return true;
    }
};

struct Owner : Plain {
    bool owns(const void*) const { return false; }
};
struct AllOfThem : WithRealloc {
    bool owns(const void*) const { return false; }
    bool expand(Block&, std::size_t) { return false; }
    void deallocate_all() {}
    std::size_t good_size(std::size_t n) const { return n; }
};
struct NotAnAllocator {
    void* allocate(std::size_t, std::size_t) { return nullptr; }  // wrong return type
    void deallocate(Block) {}
};
struct NonConstOwns : Plain {
    bool owns(const void*) { return false; }  // owns must be callable on a const allocator
};

}  // namespace

static_assert(ca::Allocator<Plain> && !ca::BlockOwner<Plain> && !ca::Reallocating<Plain> &&
              !ca::Expanding<Plain> && !ca::DeallocatingAll<Plain> && !ca::GoodSize<Plain>);
static_assert(ca::Reallocating<WithRealloc> && !ca::Expanding<WithRealloc>);
static_assert(ca::Expanding<WithExpand> && !ca::Reallocating<WithExpand>);
static_assert(ca::BlockOwner<Owner>);
static_assert(ca::BlockOwner<AllOfThem> && ca::Reallocating<AllOfThem> && ca::Expanding<AllOfThem> &&
              ca::DeallocatingAll<AllOfThem> && ca::GoodSize<AllOfThem>);
static_assert(!ca::Allocator<NotAnAllocator> && !ca::Allocator<int>);
static_assert(!ca::BlockOwner<NonConstOwns>);

BOOST_AUTO_TEST_CASE(block_basics) {
    Block empty;
    BOOST_TEST(!empty);
    BOOST_TEST(empty.ptr == nullptr);
    BOOST_TEST(empty.size == 0u);
    int x;
    Block b{&x, sizeof x};
    BOOST_TEST(static_cast<bool>(b));
    BOOST_TEST((b == Block{&x, sizeof x}));
    BOOST_TEST(!(b == Block{&x, 1}));
    BOOST_TEST(!(b == empty));
    // A size without a pointer is still a failure.
    BOOST_TEST(!(Block{nullptr, 16}));
}

BOOST_AUTO_TEST_CASE(min_align_is_mallocs) {
    BOOST_TEST(ca::kMinAlign == alignof(std::max_align_t));
    BOOST_TEST(ca::kMinAlign == 16u);  // x86-64
}

BOOST_AUTO_TEST_CASE(pow2) {
    BOOST_TEST(!ca::is_pow2(0));
    for (std::size_t i = 0; i < 64; ++i) BOOST_TEST(ca::is_pow2(std::size_t{1} << i));
    for (std::size_t n : {3u, 5u, 6u, 7u, 12u, 48u, 4095u, 4097u}) BOOST_TEST(!ca::is_pow2(n));
    BOOST_TEST(!ca::is_pow2(SIZE_MAX));
}

BOOST_AUTO_TEST_CASE(align_up_rounds_and_wraps) {
    static_assert(ca::align_up(0, 16) == 0);
    BOOST_TEST(ca::align_up(1, 16) == 16u);
    BOOST_TEST(ca::align_up(16, 16) == 16u);
    BOOST_TEST(ca::align_up(17, 16) == 32u);
    BOOST_TEST(ca::align_up(4095, 4096) == 4096u);
    BOOST_TEST(ca::align_up(4097, 4096) == 8192u);
    BOOST_TEST(ca::align_up(7, 1) == 7u);
    // Overflow wraps to 0 (callers compare against n to detect it).
    BOOST_TEST(ca::align_up(SIZE_MAX, 16) == 0u);
    BOOST_TEST(ca::align_up(SIZE_MAX - 14, 16) == 0u);
    BOOST_TEST(ca::align_up(SIZE_MAX - 15, 16) == SIZE_MAX - 15);
}

BOOST_AUTO_TEST_CASE(is_aligned_checks_low_bits) {
    alignas(64) char buf[128];
    BOOST_TEST(ca::is_aligned(buf, 64));
    BOOST_TEST(ca::is_aligned(buf, 1));
    BOOST_TEST(ca::is_aligned(buf + 16, 16));
    BOOST_TEST(!ca::is_aligned(buf + 16, 32));
    BOOST_TEST(!ca::is_aligned(buf + 1, 2));
    BOOST_TEST(ca::is_aligned(buf + 1, 1));
    BOOST_TEST(ca::is_aligned(nullptr, 4096));
}

BOOST_AUTO_TEST_CASE(reallocate_by_copy_moves_contents) {
    CheckingAllocator<> a;
    Block b = a.allocate(100, 16);
    BOOST_REQUIRE(b);
    fill(b.ptr, 100, 1);
    void* old = b.ptr;
    BOOST_TEST(ca::reallocate_by_copy(a, b, 1000));
    BOOST_TEST(b.ptr != old);  // a fresh block, the old one given back
    BOOST_TEST(b.size >= 1000u);
    BOOST_TEST(holds(b.ptr, 100, 1));
    BOOST_TEST(!a.is_live(old));
    // Shrinking copies only what fits.
    fill(b.ptr, 1000, 2);
    BOOST_TEST(ca::reallocate_by_copy(a, b, 10));
    BOOST_TEST(holds(b.ptr, 10, 2));
    BOOST_TEST(b.size >= 10u);
    a.deallocate(b);
    BOOST_TEST(a.errors() == 0u, a.last_error());
    BOOST_TEST(a.live_count() == 0u);
}

BOOST_AUTO_TEST_CASE(reallocate_by_copy_honours_alignment) {
    CheckingAllocator<> a;
    Block b = a.allocate(8, 16);
    BOOST_REQUIRE(b);
    fill(b.ptr, 8, 3);
    const std::size_t align = 256;
    BOOST_TEST(ca::reallocate_by_copy(a, b, 300, align));
    BOOST_TEST(ca::is_aligned(b.ptr, align));
    BOOST_TEST(holds(b.ptr, 8, 3));
    a.deallocate(b);
    BOOST_TEST(a.errors() == 0u, a.last_error());
}

BOOST_AUTO_TEST_CASE(reallocate_by_copy_of_empty_block_allocates) {
    CheckingAllocator<> a;
    Block b;
    BOOST_TEST(ca::reallocate_by_copy(a, b, 64));
    BOOST_TEST(static_cast<bool>(b));
    BOOST_TEST(b.size >= 64u);
    BOOST_TEST(a.allocations() == 1u);
    BOOST_TEST(a.deallocations() == 0u);  // nothing to give back
    a.deallocate(b);
    BOOST_TEST(a.errors() == 0u, a.last_error());
}

BOOST_AUTO_TEST_CASE(reallocate_by_copy_failure_leaves_block) {
    CheckingAllocator<> a;
    Block b = a.allocate(32, 16);
    BOOST_REQUIRE(b);
    fill(b.ptr, 32, 4);
    const Block before = b;
    a.fail_after(0);
    BOOST_TEST(!ca::reallocate_by_copy(a, b, 64));
    BOOST_TEST((b == before));
    BOOST_TEST(a.is_live(b.ptr));
    BOOST_TEST(holds(b.ptr, 32, 4));
    a.fail_after(-1);
    a.deallocate(b);
    BOOST_TEST(a.errors() == 0u, a.last_error());
}

BOOST_AUTO_TEST_CASE(reallocate_prefers_own_reallocate) {
    Calls calls;
    WithRealloc a{{&calls}};
    Block b = a.allocate(16, 16);
    fill(b.ptr, 16, 5);
    BOOST_TEST(ca::reallocate(a, b, 4000));
    BOOST_TEST(calls.reallocate == 1);
    BOOST_TEST(calls.allocate == 1);  // only the first: no copy path
    BOOST_TEST(holds(b.ptr, 16, 5));
    a.deallocate(b);
}

BOOST_AUTO_TEST_CASE(reallocate_tries_expand_then_copies) {
    Calls calls;
    WithExpand a{{&calls}};
    a.room = 64;
    Block b = a.allocate(16, 16);
    fill(b.ptr, 16, 6);
    void* p = b.ptr;
    // Fits the room: expanded in place, no new block.
    BOOST_TEST(ca::reallocate(a, b, 64));
    BOOST_TEST(b.ptr == p);
    BOOST_TEST(b.size == 64u);
    BOOST_TEST(calls.expand == 1);
    BOOST_TEST(calls.allocate == 1);
    // Past the room: expand fails, then a copy.
    BOOST_TEST(ca::reallocate(a, b, 100));
    BOOST_TEST(calls.expand == 2);
    BOOST_TEST(calls.allocate == 2);
    BOOST_TEST(calls.deallocate == 1);
    BOOST_TEST(holds(b.ptr, 16, 6));
    BOOST_TEST(b.size == 100u);
    a.deallocate(b);
}

BOOST_AUTO_TEST_CASE(reallocate_plain_copies_and_failure_is_clean) {
    Calls calls;
    Plain a{&calls};
    Block b = a.allocate(16, 16);
    fill(b.ptr, 16, 7);
    BOOST_TEST(ca::reallocate(a, b, 32));
    BOOST_TEST(calls.allocate == 2);
    BOOST_TEST(calls.deallocate == 1);
    BOOST_TEST(holds(b.ptr, 16, 7));
    a.fail = true;
    const Block before = b;
    BOOST_TEST(!ca::reallocate(a, b, 64));
    BOOST_TEST((b == before));
    BOOST_TEST(calls.deallocate == 1);
    a.deallocate(b);
}
