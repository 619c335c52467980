#define BOOST_TEST_MODULE pmr
#include <boost/test/unit_test.hpp>

#include <chainalloc/null.hpp>
#include <chainalloc/pmr.hpp>
#include <chainalloc/system.hpp>

#include "checking_allocator.hpp"

#include <memory_resource>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

using chainalloc::MemoryResource;
using chainalloc::testing::CheckingAllocator;

namespace {

// Strings long enough to leave the small-string buffer, so they allocate too.
std::pmr::string long_text(int i, std::pmr::memory_resource* r) {
    return std::pmr::string("value number " + std::to_string(i) + " padded past the SSO buffer", r);
}

template <class Res>
void exercise(Res& res) {
    std::pmr::vector<int> v(&res);
    for (int i = 0; i < 10000; ++i) v.push_back(i);
    long sum = 0;
    for (int x : v) sum += x;
    BOOST_TEST(sum == 10000L * 9999 / 2);
    v.shrink_to_fit();

    std::pmr::unordered_map<int, std::pmr::string> m(&res);
    for (int i = 0; i < 2000; ++i) m.emplace(i, long_text(i, &res));
    for (int i = 0; i < 2000; i += 2) m.erase(i);
    BOOST_TEST(m.size() == 1000u);
    BOOST_TEST(m.at(1999) == long_text(1999, &res));
    BOOST_TEST(m.at(7).get_allocator().resource() == &res);  // the strings use it too
}

}  // namespace

BOOST_AUTO_TEST_CASE(containers_over_system) {
    chainalloc::System sys;
    MemoryResource<chainalloc::System> res(sys);
    exercise(res);
}

BOOST_AUTO_TEST_CASE(every_deallocation_matches_an_allocation) {
    CheckingAllocator<> chk;
    {
        MemoryResource<CheckingAllocator<>> res(chk);
        exercise(res);
        BOOST_TEST(chk.allocations() > 100u);
    }
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.allocations() == chk.deallocations());
}

BOOST_AUTO_TEST_CASE(over_aligned_requests_pass_through) {
    CheckingAllocator<> chk;
    MemoryResource<CheckingAllocator<>> res(chk);
    void* p = res.allocate(100, 256);
    BOOST_TEST(chainalloc::is_aligned(p, 256));
    BOOST_TEST(chk.live_blocks().at(0).align == 256u);
    res.deallocate(p, 100, 256);
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(exhaustion_throws_bad_alloc) {
    chainalloc::Null null;
    MemoryResource<chainalloc::Null> res(null);
    BOOST_CHECK_THROW((void)res.allocate(16, 8), std::bad_alloc);
    std::pmr::vector<int> v(&res);
    BOOST_CHECK_THROW(v.push_back(1), std::bad_alloc);
    BOOST_TEST(v.empty());
}

BOOST_AUTO_TEST_CASE(failure_midway_leaks_nothing) {
    CheckingAllocator<> chk;
    {
        MemoryResource<CheckingAllocator<>> res(chk);
        std::pmr::vector<std::pmr::string> v(&res);
        chk.fail_after(50);
        BOOST_CHECK_THROW(
            for (int i = 0; i < 1000; ++i) v.push_back(long_text(i, &res)), std::bad_alloc);
        chk.fail_after(-1);
        BOOST_TEST(!v.empty());
    }
    BOOST_TEST(chk.live_count() == 0u);
    BOOST_TEST(chk.errors() == 0u, chk.last_error());
}

BOOST_AUTO_TEST_CASE(equality) {
    chainalloc::System a, b;
    MemoryResource<chainalloc::System> ra(a), ra2(a), rb(b);
    BOOST_TEST(ra.is_equal(ra));
    BOOST_TEST(ra.is_equal(ra2));  // another adapter over the same allocator can free for it
    BOOST_TEST(!ra.is_equal(rb));
    BOOST_TEST(!ra.is_equal(*std::pmr::new_delete_resource()));
    BOOST_TEST(&ra.allocator() == &a);
}
