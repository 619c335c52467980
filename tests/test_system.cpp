#define BOOST_TEST_MODULE system
#include <boost/test/unit_test.hpp>

#include <chainalloc/system.hpp>

#include "conformance.hpp"

#include <malloc.h>

#include <vector>

using chainalloc::Block;
using chainalloc::System;
using chainalloc::testing::fill;
using chainalloc::testing::holds;
using chainalloc::testing::sizes_to_1mib;
namespace ca = chainalloc;

#if defined(__SANITIZE_ADDRESS__)
// Under ASan, System is ASan's malloc, which aborts on an impossible size unless told to
// fail the way malloc does (the behaviour tested below).
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }
#endif

static_assert(ca::Reallocating<System> && !ca::BlockOwner<System> && !ca::Expanding<System>);
static_assert(ca::UsableSize<System> && ca::AllocatingZeroed<System>);
static_assert(!ca::TryDeallocating<System> && !ca::ForkAware<System> && !ca::ThreadFlushing<System>);

// glibc's malloc_usable_size is looked up once, at start-up (it allocates, so System never does
// it by itself; see libc::usable_size_fn).
struct FindUsableSize {
    FindUsableSize() { BOOST_REQUIRE(System::find_libc_usable_size()); }
};
BOOST_TEST_GLOBAL_FIXTURE(FindUsableSize);
static_assert(std::is_empty_v<System>);
static_assert(System::alignment == 16);

BOOST_AUTO_TEST_CASE(sizes_and_alignments) {
    System s;
    for (std::size_t align = 1; align <= 4096; align *= 2)
        for (std::size_t n : sizes_to_1mib()) {
            Block b = s.allocate(n, align);
            if (!b) BOOST_FAIL("allocate(" << n << ", " << align << ") failed");
            if (!ca::is_aligned(b.ptr, std::max(align, ca::kMinAlign)))
                BOOST_FAIL("allocate(" << n << ", " << align << ") misaligned " << b.ptr);
            if (b.size < n) BOOST_FAIL("allocate(" << n << ") gave " << b.size);
            // The usable size is glibc's own answer, and all of it is ours to write.
            BOOST_TEST(b.size == std::max(malloc_usable_size(b.ptr), n));
            fill(b.ptr, b.size, static_cast<unsigned>(n));
            if (!holds(b.ptr, b.size, static_cast<unsigned>(n))) BOOST_FAIL("contents at " << n);
            s.deallocate(b);
        }
}

BOOST_AUTO_TEST_CASE(default_alignment_is_mallocs) {
    System s;
    std::vector<Block> blocks;
    for (std::size_t n = 1; n <= 200; ++n) {
        blocks.push_back(s.allocate(n));
        BOOST_TEST(ca::is_aligned(blocks.back().ptr, 16));
    }
    for (Block b : blocks) s.deallocate(b);
}

BOOST_AUTO_TEST_CASE(zero_bytes_get_a_real_block) {
    System s;
    Block a = s.allocate(0, 16), b = s.allocate(0, 16);
    BOOST_REQUIRE(a);
    BOOST_REQUIRE(b);
    BOOST_TEST(a.ptr != b.ptr);  // distinct blocks, as malloc(0) gives
    s.deallocate(a);
    s.deallocate(b);
    s.deallocate(Block{});  // free(NULL): harmless
}

BOOST_AUTO_TEST_CASE(impossible_requests_fail_cleanly) {
    System s;
    BOOST_TEST((s.allocate(SIZE_MAX, 16) == Block{}));
    BOOST_TEST((s.allocate(SIZE_MAX / 2, 16) == Block{}));
    BOOST_TEST((s.allocate(SIZE_MAX - 4096, 4096) == Block{}));
    Block b = s.allocate(64, 16);
    fill(b.ptr, 64, 1);
    const Block before = b;
    BOOST_TEST(!s.reallocate(b, SIZE_MAX / 2));
    BOOST_TEST((b == before));
    BOOST_TEST(holds(b.ptr, 64, 1));
    s.deallocate(b);
}

BOOST_AUTO_TEST_CASE(reallocate_grow_and_shrink_keep_contents) {
    System s;
    Block b = s.allocate(16, 16);
    fill(b.ptr, 16, 2);
    std::size_t kept = 16;
    unsigned seed = 2;
    for (std::size_t n : {100u, 10000u, 1u << 20, 3u << 20, 5000u, 100u, 17u, 1u}) {
        BOOST_TEST_CONTEXT("to " << n) {
            BOOST_REQUIRE(s.reallocate(b, n));
            BOOST_TEST(b.size >= n);
            BOOST_TEST(ca::is_aligned(b.ptr, 16));
            BOOST_TEST(holds(b.ptr, std::min(kept, n), seed));
            seed += 1;
            fill(b.ptr, n, seed);
            kept = n;
        }
    }
    // To zero keeps a block (realloc(p, 0) would free it).
    BOOST_TEST(s.reallocate(b, 0));
    BOOST_TEST(b.ptr != nullptr);
    BOOST_TEST(b.size >= 1u);
    s.deallocate(b);
    Block empty;
    BOOST_TEST(s.reallocate(empty, 300));
    BOOST_TEST(empty.size >= 300u);
    fill(empty.ptr, 300, 9);
    s.deallocate(empty);
}

BOOST_AUTO_TEST_CASE(zeroed_is_zero) {
    System s;
    // Dirty the heap first so a recycled chunk would show.
    for (std::size_t n : {64u, 4096u, 100000u}) {
        Block d = s.allocate(n);
        fill(d.ptr, d.size, 5);
        s.deallocate(d);
    }
    for (std::size_t n : {0u, 1u, 64u, 4096u, 100000u, 1u << 20}) {
        Block z = s.allocate_zeroed(n);
        BOOST_REQUIRE(z);
        BOOST_TEST(z.size >= n);
        const auto* c = static_cast<const unsigned char*>(z.ptr);
        std::size_t nonzero = 0;
        for (std::size_t i = 0; i < n; ++i) nonzero += c[i] != 0;
        BOOST_TEST(nonzero == 0u);
        s.deallocate(z);
    }
}

BOOST_AUTO_TEST_CASE(usable_size_is_glibcs) {
    Block b = System{}.allocate(24);
    BOOST_TEST(b.size >= 24u);
    BOOST_TEST(System{}.usable_size(b.ptr) == malloc_usable_size(b.ptr));
    BOOST_TEST(b.size == System{}.usable_size(b.ptr));
    System{}.deallocate(b);
}

// Over-aligned zeroed blocks have no glibc call of their own: memalign and a memset of the
// whole usable size.
BOOST_AUTO_TEST_CASE(zeroed_over_aligned) {
    System s;
    for (std::size_t align : {32u, 64u, 4096u})
        for (std::size_t n : {0u, 1u, 100u, 5000u}) {
            Block d = s.allocate(n, align);  // dirty a block of this shape first
            fill(d.ptr, d.size, 7);
            s.deallocate(d);
            Block z = s.allocate_zeroed(n, align);
            BOOST_REQUIRE(z);
            BOOST_TEST(ca::is_aligned(z.ptr, align));
            const auto* c = static_cast<const unsigned char*>(z.ptr);
            std::size_t nonzero = 0;
            for (std::size_t i = 0; i < z.size; ++i) nonzero += c[i] != 0;
            BOOST_TEST(nonzero == 0u);
            s.deallocate(z);
        }
}

// The pointer is handed in (the preload's way); System never looks it up by itself.
BOOST_AUTO_TEST_CASE(usable_size_handed_in) {
    ca::libc::UsableSizeFn found = ca::libc::usable_size_fn.load();
    System::set_libc_usable_size(nullptr);
    Block b = System{}.allocate(24);
    BOOST_TEST(b.size == 24u);  // nothing known: the request
    BOOST_TEST(System{}.usable_size(b.ptr) == 0u);
    System::set_libc_usable_size(found);
    BOOST_TEST(System{}.usable_size(b.ptr) == malloc_usable_size(b.ptr));
    System{}.deallocate(b);
}
