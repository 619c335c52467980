#define BOOST_TEST_MODULE owned
#include <boost/test/unit_test.hpp>

#include <chainalloc/null.hpp>
#include <chainalloc/owned.hpp>
#include <chainalloc/system.hpp>

#include "checking_allocator.hpp"

#include <stdexcept>
#include <string>
#include <utility>

using chainalloc::make_owned;
using chainalloc::Owned;
using Checking = chainalloc::testing::CheckingAllocator<>;

namespace {

int constructed = 0;
int destroyed = 0;

struct Counted {
    std::string name;
    explicit Counted(std::string n) : name(std::move(n)) { ++constructed; }
    ~Counted() { ++destroyed; }
};

struct Throws {
    explicit Throws(int) { throw std::runtime_error("ctor"); }
};

struct alignas(64) Line {
    char bytes[64] = {};
};

struct Reset {
    Reset() { constructed = destroyed = 0; }
};

// Throws on the `n`th default construction, to test arrays that fail midway.
int build_budget = 0;
struct Fragile {
    Fragile() {
        if (--build_budget < 0) throw std::runtime_error("budget");
        ++constructed;
    }
    ~Fragile() { ++destroyed; }
};

}  // namespace

static_assert(!std::is_copy_constructible_v<Owned<int, Checking>>);
static_assert(std::is_nothrow_move_constructible_v<Owned<int, Checking>>);
static_assert(std::is_nothrow_move_assignable_v<Owned<int, Checking>>);

BOOST_FIXTURE_TEST_SUITE(owned, Reset)

BOOST_AUTO_TEST_CASE(destructor_runs_once_and_block_returns) {
    Checking chk;
    {
        auto o = make_owned<Counted>(chk, "box");
        BOOST_REQUIRE(o);
        BOOST_TEST(o->name == "box");
        BOOST_TEST((*o).name.size() == 3u);
        BOOST_TEST(chk.live_count() == 1u);
        BOOST_TEST(chk.live_blocks().at(0).requested == sizeof(Counted));
        BOOST_TEST(o.allocator() == &chk);
    }
    BOOST_TEST(constructed == 1);
    BOOST_TEST(destroyed == 1);
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(move_transfers_ownership) {
    Checking chk;
    {
        auto a = make_owned<Counted>(chk, "a");
        Counted* p = a.get();
        Owned<Counted, Checking> b(std::move(a));
        BOOST_TEST(!a);
        BOOST_TEST(b.get() == p);
        auto c = make_owned<Counted>(chk, "c");
        c = std::move(b);  // c's old value goes now
        BOOST_TEST(destroyed == 1);
        BOOST_TEST(c->name == "a");
        BOOST_TEST(chk.live_count() == 1u);
        c = std::move(c);  // self-move keeps the value
        BOOST_TEST(c->name == "a");
    }
    BOOST_TEST(destroyed == 2);
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(reset_and_release) {
    Checking chk;
    auto a = make_owned<Counted>(chk, "a");
    a.reset();
    BOOST_TEST(!a);
    BOOST_TEST(destroyed == 1);
    BOOST_TEST(chk.live_count() == 0u);

    auto b = make_owned<Counted>(chk, "b");
    Counted* raw = b.release();
    BOOST_TEST(!b);
    BOOST_TEST(destroyed == 1);  // released: not destroyed
    BOOST_TEST(chk.is_live(raw));
    std::destroy_at(raw);  // what release() hands the caller to do
    chk.deallocate(chainalloc::Block{raw, sizeof(Counted)});
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(failure_gives_empty) {
    chainalloc::Null null;
    auto o = make_owned<Counted>(null, "never");
    BOOST_TEST(!o);
    BOOST_TEST(o.get() == nullptr);
    BOOST_TEST(constructed == 0);  // no memory, no construction
    auto arr = chainalloc::allocate_array<int>(null, 10);
    BOOST_TEST(!arr);
}

BOOST_AUTO_TEST_CASE(throwing_constructor_returns_the_block) {
    Checking chk;
    BOOST_CHECK_THROW(make_owned<Throws>(chk, 1), std::runtime_error);
    BOOST_TEST(chk.allocations() == 1u);
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(over_aligned_type) {
    Checking chk;
    {
        auto a = make_owned<Line>(chk);
        auto b = make_owned<Line>(chk);
        BOOST_REQUIRE(a && b);
        BOOST_TEST(chainalloc::is_aligned(a.get(), 64));
        BOOST_TEST(chainalloc::is_aligned(b.get(), 64));
        BOOST_TEST(chk.live_blocks().at(0).align == 64u);
    }
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(works_over_system) {
    chainalloc::System sys;
    auto o = make_owned<std::pair<int, double>>(sys, 1, 2.5);
    BOOST_REQUIRE(o);
    BOOST_TEST(o->first == 1);
    BOOST_TEST(o->second == 2.5);
}

BOOST_AUTO_TEST_CASE(arrays) {
    Checking chk;
    {
        auto arr = chainalloc::allocate_array<int>(chk, 100);
        BOOST_REQUIRE(arr);
        BOOST_TEST(arr.size() == 100u);
        int sum = 0;
        for (int x : arr) sum += x;
        BOOST_TEST(sum == 0);  // value-initialized
        arr[5] = 7;
        BOOST_TEST(arr.span()[5] == 7);
        BOOST_TEST(chk.live_blocks().at(0).requested == 100 * sizeof(int));
    }
    BOOST_TEST(chk.live_count() == 0u);

    auto too_big = chainalloc::allocate_array<std::uint64_t>(chk, std::size_t(-1) / 4);
    BOOST_TEST(!too_big);  // n * sizeof(T) overflows: refused before the allocator
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(array_constructor_throwing_midway) {
    Checking chk;
    build_budget = 3;
    BOOST_CHECK_THROW(chainalloc::allocate_array<Fragile>(chk, 10), std::runtime_error);
    BOOST_TEST(constructed == 3);
    BOOST_TEST(destroyed == 3);  // what was built is destroyed
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());

    build_budget = 10;
    {
        auto ok = chainalloc::allocate_array<Fragile>(chk, 10);
        BOOST_TEST(ok.size() == 10u);
    }
    BOOST_TEST(destroyed == 13);
    BOOST_TEST(chk.live_count() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
