#define BOOST_TEST_MODULE null
#include <boost/test/unit_test.hpp>

#include <chainalloc/null.hpp>

#include "conformance.hpp"

#include <memory>

using chainalloc::Block;
using chainalloc::Null;
namespace ca = chainalloc;

static_assert(ca::Allocator<Null> && ca::BlockOwner<Null> && ca::Reallocating<Null> &&
              ca::DeallocatingAll<Null>);
static_assert(std::is_empty_v<Null>, "Null carries no state, so it costs nothing in a composite");

BOOST_AUTO_TEST_CASE(fails_every_request) {
    Null n;
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{4096},
                             std::size_t{1} << 30, SIZE_MAX})
        for (std::size_t align = 1; align <= 65536; align *= 2) {
            Block b = n.allocate(size, align);
            BOOST_TEST(!b);
            BOOST_TEST((b == Block{}));  // a clean failure: no pointer, no size
        }
}

BOOST_AUTO_TEST_CASE(owns_nothing) {
    Null n;
    int local = 0;
    auto heap = std::make_unique<int>(1);
    BOOST_TEST(!n.owns(&local));
    BOOST_TEST(!n.owns(heap.get()));
    BOOST_TEST(!n.owns(nullptr));
    BOOST_TEST(!ca::testing::owns_own_stack_address(n));
}

BOOST_AUTO_TEST_CASE(empty_block_back_is_harmless) {
    Null n;
    n.deallocate(Block{});
    n.deallocate(n.allocate(10, 16));
    n.deallocate_all();
    BOOST_TEST(!n.allocate(1, 1));  // still the same Null afterwards
}

BOOST_AUTO_TEST_CASE(reallocate_only_the_empty_block_to_nothing) {
    Null n;
    Block b;
    BOOST_TEST(n.reallocate(b, 0));  // nothing to nothing: trivially done
    BOOST_TEST((b == Block{}));
    BOOST_TEST(!n.reallocate(b, 1));
    BOOST_TEST((b == Block{}));
    // Generic reallocate goes through Null's own and fails just as cleanly.
    BOOST_TEST(!ca::reallocate(n, b, 64));
    BOOST_TEST((b == Block{}));
    // A foreign block is left untouched.
    int x = 0;
    Block foreign{&x, sizeof x};
    BOOST_TEST(!n.reallocate(foreign, 8));
    BOOST_TEST((foreign == Block{&x, sizeof x}));
}
