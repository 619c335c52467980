#define BOOST_TEST_MODULE compositions
#include <boost/test/unit_test.hpp>

// Chains as users build them, driven by real containers.

#include <chainalloc/fallback.hpp>
#include <chainalloc/free_list.hpp>
#include <chainalloc/jemalloc.hpp>
#include <chainalloc/pmr.hpp>
#include <chainalloc/proxy.hpp>
#include <chainalloc/segregated.hpp>
#include <chainalloc/stl_allocator.hpp>
#include <chainalloc/system.hpp>
#include <chainalloc/thread_cached.hpp>

#include "checking_allocator.hpp"
#include "conformance.hpp"

#include <list>
#include <map>
#include <memory_resource>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ca = chainalloc;
using ca::Block;
using ca::testing::CheckingAllocator;
using ca::testing::fill;
using ca::testing::holds;
using ca::testing::Ref;

namespace {

using List = ca::FreeList<ca::System>;
using SysChecker = CheckingAllocator<ca::System>;

// The preload's kind of chain: size classes first, jemalloc for the rest, counted.
using Counted = ca::Proxy<ca::Fallback<ca::Segregated<ca::SpinLock>, ca::Jemalloc>, ca::CountingLogger>;

std::unique_ptr<Counted> make_counted(std::size_t max_bytes = 0) {
    auto c = std::make_unique<Counted>();
    BOOST_REQUIRE(c->inner().primary().init(ca::SizeClasses::defaults(), max_bytes));
    return c;
}

}  // namespace

// Small blocks from the list while it lasts, the rest from System; every block goes home,
// which the checker on the System side would flag otherwise.
BOOST_AUTO_TEST_CASE(free_list_then_system_under_load) {
    SysChecker sys;
    {
        ca::Fallback<List, Ref<SysChecker>> chain{List(128, 256), Ref<SysChecker>(sys)};
        std::mt19937 rng(1);
        struct Live {
            Block b;
            std::size_t n;
            unsigned seed;
        };
        std::vector<Live> live;
        std::size_t from_list = 0, from_system = 0, moves_across = 0;
        for (unsigned i = 0; i < 40000; ++i) {
            unsigned op = rng() % 16;
            if (op < 8 || live.empty()) {
                // Mostly small (list-sized) requests, some larger.
                std::size_t n = rng() % 4 ? rng() % 129 : 129 + rng() % 4000;
                Block b = chain.allocate(n, 16);
                BOOST_REQUIRE(b);
                (chain.primary().owns(b.ptr) ? from_list : from_system)++;
                fill(b.ptr, n, i);
                live.push_back({b, n, i});
            } else if (op < 14 || live.size() > 2000) {
                std::size_t k = rng() % live.size();
                if (!holds(live[k].b.ptr, live[k].n, live[k].seed)) BOOST_FAIL("contents lost");
                chain.deallocate(live[k].b);
                live[k] = live.back();
                live.pop_back();
            } else {
                Live& l = live[rng() % live.size()];
                std::size_t n = rng() % 2 ? rng() % 129 : rng() % 5000;
                const bool was_list = chain.primary().owns(l.b.ptr);
                BOOST_REQUIRE(chain.reallocate(l.b, n));
                if (was_list != chain.primary().owns(l.b.ptr)) ++moves_across;
                if (!holds(l.b.ptr, std::min(l.n, n), l.seed)) BOOST_FAIL("realloc lost contents");
                fill(l.b.ptr, n, l.seed);
                l.n = n;
            }
        }
        BOOST_TEST(from_list > 1000u);
        BOOST_TEST(from_system > 1000u);
        BOOST_TEST(moves_across > 0u);
        BOOST_TEST(chain.primary().available() < 256u);
        for (Live& l : live) chain.deallocate(l.b);
        BOOST_TEST(chain.primary().available() == 256u);
    }
    BOOST_TEST(sys.errors() == 0u, sys.last_error());
    BOOST_TEST(sys.live_count() == 0u);
    BOOST_TEST(sys.allocations() > 1000u);
}

BOOST_AUTO_TEST_CASE(pmr_vector_counted_exactly) {
    auto chain = make_counted();
    const ca::CountingLogger& log = chain->logger();
    ca::MemoryResource<Counted> res(*chain);
    {
        std::pmr::vector<int> v(&res);
        v.reserve(1000);
        BOOST_TEST(log.requests == 1u);
        BOOST_TEST(log.live_blocks == 1u);
        BOOST_TEST(chain->inner().primary().owns(v.data()));  // 4000 bytes: a size class
        for (int i = 0; i < 1000; ++i) v.push_back(i);
        BOOST_TEST(log.requests == 1u);  // no growth within the reservation
        v.push_back(1000);                  // growth: a new buffer, the old one back
        BOOST_TEST(log.requests == 2u);
        BOOST_TEST(log.frees == 1u);
        BOOST_TEST(log.live_blocks == 1u);
        v.reserve(100000);  // 400 KB: past the classes, from jemalloc
        BOOST_TEST(!chain->inner().primary().owns(v.data()));
        BOOST_TEST(log.requests == 3u);
        BOOST_TEST(log.peak_bytes >= 400000u);
        long sum = 0;
        for (int x : v) sum += x;
        BOOST_TEST(sum == 1000L * 1001 / 2);
    }
    BOOST_TEST(log.live_blocks == 0u);
    BOOST_TEST(log.requests == 3u);
    BOOST_TEST(log.frees == 3u);
    BOOST_TEST(log.refused == 0u);
    BOOST_TEST(log.reallocations == 0u);  // pmr never reallocates
}

BOOST_AUTO_TEST_CASE(pmr_map_counted_exactly) {
    auto chain = make_counted();
    const ca::CountingLogger& log = chain->logger();
    ca::MemoryResource<Counted> res(*chain);
    {
        std::pmr::map<int, long> m(&res);
        BOOST_TEST(log.requests == 0u);  // an empty map holds nothing
        for (int i = 0; i < 500; ++i) m.emplace(i, i * 3L);
        BOOST_TEST(log.requests == 500u);  // one node each
        BOOST_TEST(log.live_blocks == 500u);
        const std::size_t node = chain->inner().primary().usable_size(&*m.begin());
        BOOST_TEST(log.live_bytes == 500 * node);  // every node a block of one size class
        for (int i = 0; i < 500; i += 2) m.erase(i);
        BOOST_TEST(log.frees == 250u);
        BOOST_TEST(log.live_blocks == 250u);
        for (auto& [k, v] : m) {
            BOOST_TEST(chain->inner().primary().owns(&v));
            BOOST_TEST(v == k * 3L);
        }
        // Erased nodes are reused: 250 more inserts carve nothing.
        const std::size_t carved = chain->inner().primary().carved_bytes();
        for (int i = 0; i < 500; i += 2) m.emplace(i, -i);
        BOOST_TEST(chain->inner().primary().carved_bytes() == carved);
        BOOST_TEST(log.peak_bytes == 500 * node);
    }
    BOOST_TEST(log.live_blocks == 0u);
    BOOST_TEST(log.requests == 750u);
    BOOST_TEST(log.frees == 750u);
    BOOST_TEST(log.refused == 0u);
}

// The Segregated layer capped: once it is full, the map goes on growing in jemalloc.
BOOST_AUTO_TEST_CASE(pmr_spills_past_the_cap) {
    auto chain = make_counted(64 * 1024);
    const ca::CountingLogger& log = chain->logger();
    ca::MemoryResource<Counted> res(*chain);
    {
        std::pmr::map<int, std::pmr::string> m(&res);
        for (int i = 0; i < 3000; ++i) m.emplace(i, std::pmr::string(40, static_cast<char>('a' + i % 26)));
        std::size_t in_classes = 0, outside = 0;
        for (auto& [k, s] : m) {
            (chain->inner().primary().owns(s.data()) ? in_classes : outside)++;
            BOOST_TEST(std::string_view(s) == std::string(40, static_cast<char>('a' + k % 26)));
        }
        BOOST_TEST(in_classes > 0u);
        BOOST_TEST(outside > 0u);
        BOOST_TEST(chain->inner().primary().carved_bytes() <= 64 * 1024u);
        BOOST_TEST(log.live_blocks == 6000u);  // a node and a string buffer each
    }
    BOOST_TEST(log.live_blocks == 0u);
    BOOST_TEST(log.refused == 0u);
    BOOST_TEST(log.requests == log.frees);
}

BOOST_AUTO_TEST_CASE(stl_allocator_vector_over_a_fallback_chain) {
    SysChecker sys;
    {
        using Chain = ca::Fallback<List, Ref<SysChecker>>;
        Chain chain{List(256, 8), Ref<SysChecker>(sys)};
        using Alloc = ca::StlAllocator<int, Chain>;
        std::vector<int, Alloc> v{Alloc(chain)};
        v.reserve(16);  // 64 bytes: a list block
        BOOST_TEST(chain.primary().owns(v.data()));
        BOOST_TEST(sys.allocations() == 0u);
        for (int i = 0; i < 64; ++i) v.push_back(i);  // 256 bytes: still a list block
        BOOST_TEST(chain.primary().owns(v.data()));
        for (int i = 64; i < 10000; ++i) v.push_back(i);  // outgrows the list
        BOOST_TEST(!chain.primary().owns(v.data()));
        BOOST_TEST(sys.is_live(v.data()));
        for (int i = 0; i < 10000; ++i)
            if (v[i] != i) BOOST_FAIL("element " << i);
        BOOST_TEST(chain.primary().available() == 8u);  // the list blocks went back

        // A node container on the same chain: the first nodes fill the list, then System.
        using NodeAlloc = ca::StlAllocator<long, Chain>;
        std::list<long, NodeAlloc> l{NodeAlloc(chain)};
        for (long i = 0; i < 20; ++i) l.push_back(i);
        BOOST_TEST(chain.primary().available() == 0u);
        long sum = 0;
        for (long x : l) sum += x;
        BOOST_TEST(sum == 190);
        l.clear();
        BOOST_TEST(chain.primary().available() == 8u);

        // Copies stay on their own allocator, moves take it along.
        std::vector<int, Alloc> copy(v, Alloc(chain));
        BOOST_TEST(copy == v);
        std::vector<int, Alloc> moved(std::move(copy));
        BOOST_TEST(moved.size() == 10000u);
    }
    BOOST_TEST(sys.errors() == 0u, sys.last_error());
    BOOST_TEST(sys.live_count() == 0u);
}

// The preload's chain, as blocks: size classes, then glibc. Every ability the preload needs is
// there, routed by owner.
namespace {
using SegSys = ca::Fallback<ca::Segregated<ca::SpinLock>, ca::System>;
using CountedSegSys = ca::Proxy<SegSys, ca::CountingLogger>;
}  // namespace
static_assert(ca::UsableSize<SegSys> && ca::AllocatingZeroed<SegSys> && ca::ForkAware<SegSys>);
static_assert(!ca::TryDeallocating<SegSys>, "System cannot tell its blocks from foreign ones");
static_assert(!ca::ThreadFlushing<SegSys>, "no part caches per thread");
static_assert(ca::UsableSize<CountedSegSys> && ca::AllocatingZeroed<CountedSegSys> &&
              ca::ForkAware<CountedSegSys>);
static_assert(ca::UsableSize<Counted> && ca::AllocatingZeroed<Counted> && ca::ForkAware<Counted>);

BOOST_AUTO_TEST_CASE(segregated_then_system_forwards_by_owner) {
    BOOST_REQUIRE(ca::System::find_libc_usable_size());  // at start-up, outside any malloc
    auto chain = std::make_unique<CountedSegSys>();
    BOOST_REQUIRE(chain->inner().primary().init(ca::SizeClasses::defaults(), 0));
    Block small = chain->allocate(100, 16);
    Block big = chain->allocate(100000, 16);
    BOOST_TEST(chain->inner().primary().owns(small.ptr));
    BOOST_TEST(!chain->inner().primary().owns(big.ptr));
    BOOST_TEST(chain->usable_size(small.ptr) == small.size);
    // glibc's answer (not the linked malloc_usable_size: this program links jemalloc's).
    BOOST_TEST(chain->usable_size(big.ptr) == big.size);
    BOOST_TEST(big.size >= 100000u);

    // Zeroed: the list's block by memset (after dirtying it), glibc's by calloc.
    fill(small.ptr, small.size, 1);
    chain->deallocate(small);
    Block z = chain->allocate_zeroed(100, 16);
    BOOST_TEST(z.ptr == small.ptr);
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < z.size; ++i) nonzero += static_cast<unsigned char*>(z.ptr)[i] != 0;
    BOOST_TEST(nonzero == 0u);
    Block zb = chain->allocate_zeroed(200000, 16);
    BOOST_TEST(static_cast<unsigned char*>(zb.ptr)[199999] == 0);

    chain->fork_prepare();  // every class's lock, then released: the chain still works
    chain->fork_parent();
    chain->fork_prepare();
    chain->fork_child();
    chain->deallocate(z);
    chain->deallocate(zb);
    chain->deallocate(big);
    BOOST_TEST(chain->logger().live_blocks == 0u);
    BOOST_TEST(chain->logger().live_bytes == 0u);
}

// One call per layer: the Segregated part says "mine" and frees in one step.
BOOST_AUTO_TEST_CASE(try_deallocate_through_a_segregated_chain) {
    using Segs = ca::Fallback<ca::Segregated<ca::SpinLock>, ca::Segregated<ca::SpinLock>>;
    static_assert(ca::TryDeallocating<Segs>);
    auto chain = std::make_unique<Segs>();
    BOOST_REQUIRE(chain->primary().init(ca::SizeClasses::defaults(), 4096));
    BOOST_REQUIRE(chain->secondary().init(ca::SizeClasses::defaults(), 0));
    std::vector<Block> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(chain->allocate(64, 16));
    BOOST_TEST(!chain->primary().owns(blocks.back().ptr));  // past the cap: the second one
    alignas(16) char foreign[64];
    BOOST_TEST(!chain->try_deallocate(Block{foreign, sizeof foreign}));
    for (Block b : blocks) BOOST_TEST(chain->try_deallocate(b));
    BOOST_TEST(chain->primary().out_bytes() == 0u);
}

// The preload's freelist layer (CachedSegregated, here with ThreadCached's caches) composed at
// compile time: cached size classes, then glibc, counted. Thread exit and fork reach the
// caches and the central lists through the whole chain. The preload composes the same blocks
// at run time, erased, in a LayerChain: test_layer_chain.cpp.
namespace {
struct ChainTag {};
using CachedChain = ca::Proxy<ca::Fallback<ca::ThreadCached<ChainTag>, ca::System>, ca::CountingLogger>;
}  // namespace
static_assert(ca::ThreadFlushing<CachedChain> && ca::ForkAware<CachedChain> && ca::UsableSize<CachedChain> &&
              ca::AllocatingZeroed<CachedChain>);

BOOST_AUTO_TEST_CASE(thread_exit_through_a_cached_chain) {
    BOOST_REQUIRE(ca::System::find_libc_usable_size());
    auto chain = std::make_unique<CachedChain>();
    BOOST_REQUIRE(chain->inner().primary().init(ca::SizeClasses::defaults(), 64, std::size_t{1} << 30));
    std::thread worker([&] {
        std::vector<Block> blocks;
        for (int i = 0; i < 200; ++i) blocks.push_back(chain->allocate(24 + i, 16));
        blocks.push_back(chain->allocate(100000, 16));  // glibc's
        for (Block b : blocks) {
            BOOST_REQUIRE(b);
            BOOST_TEST(chain->usable_size(b.ptr) == b.size);
            chain->deallocate(b);
        }
        chain->flush_thread();
    });
    worker.join();
    BOOST_TEST(chain->inner().primary().central().out_bytes() == 0u);
    BOOST_TEST(chain->logger().live_blocks == 0u);
    chain->fork_prepare();
    chain->fork_parent();
}
