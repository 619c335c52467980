#define BOOST_TEST_MODULE stl_allocator
#include <boost/test/unit_test.hpp>

#include <chainalloc/null.hpp>
#include <chainalloc/stl_allocator.hpp>
#include <chainalloc/system.hpp>

#include "checking_allocator.hpp"

#include <limits>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

using chainalloc::StlAllocator;
using chainalloc::System;
using Checking = chainalloc::testing::CheckingAllocator<>;

template <class T, class A>
using Vector = std::vector<T, StlAllocator<T, A>>;
template <class T, class A>
using List = std::list<T, StlAllocator<T, A>>;
template <class K, class V, class A>
using Map = std::map<K, V, std::less<K>, StlAllocator<std::pair<const K, V>, A>>;
template <class A>
using String = std::basic_string<char, std::char_traits<char>, StlAllocator<char, A>>;

namespace {

template <class A>
void exercise(A& a) {
    StlAllocator<int, A> alloc(a);

    Vector<int, A> v(alloc);
    for (int i = 0; i < 5000; ++i) v.push_back(i);
    BOOST_TEST(v[4999] == 4999);

    List<int, A> l(alloc);  // rebinds int -> the list's node type
    for (int i = 0; i < 500; ++i) l.push_front(i);
    BOOST_TEST(l.front() == 499);
    l.remove_if([](int x) { return x % 3 == 0; });
    BOOST_TEST(l.size() == 333u);

    Map<int, String<A>, A> m(alloc);
    for (int i = 0; i < 500; ++i)
        m.emplace(i, String<A>("a string long enough for the heap, #" + std::to_string(i), alloc));
    m.erase(m.begin(), m.find(250));
    BOOST_TEST(m.size() == 250u);
    BOOST_TEST(std::string_view(m.at(300).data(), 8) == "a string");

    String<A> s(alloc);
    for (int i = 0; i < 100; ++i) s += "grow ";
    BOOST_TEST(s.size() == 500u);

    // Moves and swaps carry the allocator along (propagate_on_container_move/swap).
    Vector<int, A> w(alloc);
    w = std::move(v);
    BOOST_TEST(w.size() == 5000u);
    std::swap(w, v);
    BOOST_TEST(v.size() == 5000u);
}

}  // namespace

using Traits = std::allocator_traits<StlAllocator<int, Checking>>;
static_assert(Traits::propagate_on_container_move_assignment::value);
static_assert(Traits::propagate_on_container_swap::value);
static_assert(!Traits::propagate_on_container_copy_assignment::value);
static_assert(!Traits::is_always_equal::value);
static_assert(std::is_same_v<Traits::rebind_alloc<double>, StlAllocator<double, Checking>>);

BOOST_AUTO_TEST_CASE(containers_over_system) {
    System sys;
    exercise(sys);
}

BOOST_AUTO_TEST_CASE(containers_over_checking_allocator) {
    Checking chk;
    exercise(chk);
    BOOST_TEST(chk.allocations() > 500u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
    BOOST_TEST(chk.live_count() == 0u);
}

BOOST_AUTO_TEST_CASE(alignment_of_the_element_type) {
    struct alignas(64) Line { char b[64]; };
    Checking chk;
    {
        Vector<Line, Checking> v{StlAllocator<Line, Checking>(chk)};
        v.resize(10);
        BOOST_TEST(chainalloc::is_aligned(v.data(), 64));
        BOOST_TEST(chk.live_blocks().at(0).align == 64u);
    }
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(overflow_throws_bad_alloc) {
    Checking chk;
    StlAllocator<std::uint64_t, Checking> alloc(chk);
    std::size_t too_many = std::numeric_limits<std::size_t>::max() / sizeof(std::uint64_t) + 1;
    BOOST_CHECK_THROW((void)alloc.allocate(too_many), std::bad_alloc);
    BOOST_CHECK_THROW((void)alloc.allocate(too_many), std::bad_array_new_length);
    BOOST_TEST(chk.allocations() == 0u);  // refused before reaching the allocator
}

BOOST_AUTO_TEST_CASE(exhaustion_throws_bad_alloc) {
    chainalloc::Null null;
    StlAllocator<int, chainalloc::Null> alloc(null);
    BOOST_CHECK_THROW((void)alloc.allocate(1), std::bad_alloc);
    Vector<int, chainalloc::Null> v(alloc);
    BOOST_CHECK_THROW(v.push_back(1), std::bad_alloc);
}

BOOST_AUTO_TEST_CASE(failure_midway_leaks_nothing) {
    Checking chk;
    {
        StlAllocator<int, Checking> alloc(chk);
        Map<int, String<Checking>, Checking> m(alloc);
        chk.fail_after(40);
        BOOST_CHECK_THROW(
            for (int i = 0; i < 100; ++i) m.emplace(i, String<Checking>(200, 'x', alloc)),
            std::bad_alloc);
        chk.fail_after(-1);
    }
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(equality_is_by_allocator_address) {
    Checking a, b;
    StlAllocator<int, Checking> x(a), y(a), z(b);
    StlAllocator<double, Checking> rebound(x);
    BOOST_TEST((x == y));
    BOOST_TEST((x != z));
    BOOST_TEST((rebound == x));
    BOOST_TEST(&rebound.allocator() == &a);
    static_assert(!std::is_default_constructible_v<StlAllocator<int, Checking>>);
}

BOOST_AUTO_TEST_CASE(stateless_allocators_are_always_equal) {
    System a, b;
    StlAllocator<int, System> x(a), z(b), d;
    BOOST_TEST((x == z));  // any System frees another's memory
    BOOST_TEST((d == x));
    static_assert(std::allocator_traits<StlAllocator<int, System>>::is_always_equal::value);
    String<System> s("a default-constructed allocator serves too, long enough for the heap");
    BOOST_TEST(s.substr(2, 7) == "default");
}

BOOST_AUTO_TEST_CASE(copy_assignment_keeps_the_destination_allocator) {
    Checking one, two;
    {
        Vector<int, Checking> a(100, 1, StlAllocator<int, Checking>(one));
        Vector<int, Checking> b{StlAllocator<int, Checking>(two)};
        b = a;
        BOOST_TEST((b.get_allocator() == StlAllocator<int, Checking>(two)));
        BOOST_TEST(two.live_count() == 1u);
        b = std::move(a);  // the buffer moves, and its allocator with it
        BOOST_TEST((b.get_allocator() == StlAllocator<int, Checking>(one)));
        BOOST_TEST(two.live_count() == 0u);
    }
    BOOST_TEST(one.live_count() + two.live_count() == 0u);
    BOOST_TEST(one.errors() + two.errors() == 0u);
}
