#define BOOST_TEST_MODULE conformance
#include <boost/test/unit_test.hpp>

// One suite, every block: the contract of allocator.hpp checked the same way on each.

#include <chainalloc/fallback.hpp>
#include <chainalloc/free_list.hpp>
#include <chainalloc/jemalloc.hpp>
#include <chainalloc/null.hpp>
#include <chainalloc/proxy.hpp>
#include <chainalloc/region.hpp>
#include <chainalloc/segregated.hpp>
#include <chainalloc/system.hpp>
#include <chainalloc/thread_cached.hpp>

#include "checking_allocator.hpp"
#include "conformance.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ca = chainalloc;
using ca::Block;
using ca::testing::CheckingAllocator;
using ca::testing::fill;
using ca::testing::holds;
using ca::testing::Ref;

namespace {

// Each fixture names its allocator and what it promises:
//   serves     it hands out memory at all
//   max_size   every request up to this size (at max_align or less) must succeed
//   max_align  ... and every alignment up to this
//   ask_align  alignments up to this may be asked: an aligned block or a clean failure
//   lifo       a freed block is the next one handed out for the same size
// and checks on teardown whatever it can see of leaks or misuse.

struct NullFx {
    static constexpr bool serves = false, lifo = false;
    static constexpr std::size_t max_size = 0, max_align = 0, ask_align = 65536;
    ca::Null a;
};

struct FreeListFx {
    static constexpr bool serves = true, lifo = true;
    static constexpr std::size_t max_size = 256, max_align = 256, ask_align = 4096;
    ca::FreeList<ca::System> a{256, 64};
    FreeListFx() { BOOST_REQUIRE(a.ready()); }
    ~FreeListFx() { BOOST_TEST(a.available() == 64u); }  // every block came back
};

// The FreeList's parent is watched: one region, given back once, nothing else.
struct CheckedFreeListFx {
    static constexpr bool serves = true, lifo = true;
    static constexpr std::size_t max_size = 208, max_align = 16, ask_align = 4096;
    using Parent = CheckingAllocator<ca::System>;
    Parent parent;
    std::optional<ca::FreeList<Ref<Parent>>> list{std::in_place, 208, 40, Ref<Parent>(parent)};
    ca::FreeList<Ref<Parent>>& a = *list;
    CheckedFreeListFx() { BOOST_REQUIRE(a.ready()); }
    ~CheckedFreeListFx() {
        BOOST_TEST(a.available() == 40u);
        list.reset();
        BOOST_TEST(parent.errors() == 0u, parent.last_error());
        BOOST_TEST(parent.live_count() == 0u);
        BOOST_TEST(parent.allocations() == 1u);
        BOOST_TEST(parent.deallocations() == 1u);
    }
};

template <class Lock>
struct SegregatedFx {
    static constexpr bool serves = true, lifo = true;
    static constexpr std::size_t max_size = 32768, max_align = 4096, ask_align = 65536;
    ca::Segregated<Lock> a;
    SegregatedFx() { BOOST_REQUIRE(a.init(ca::SizeClasses::defaults(), 512 * 1024)); }
};

// The preload's freelist layer: the same block, its caches in a thread_local of its own. The
// destructor flushes this thread's cache, so the next fixture's object starts from empty.
struct ConformanceTag {};
struct CachedFx {
    static constexpr bool serves = true, lifo = true;
    static constexpr std::size_t max_size = 32768, max_align = 4096, ask_align = 65536;
    ca::ThreadCached<ConformanceTag> a;
    CachedFx() { BOOST_REQUIRE(a.init(ca::SizeClasses::defaults(), ca::CacheLimits{64, 64 * 256}, 512 * 1024)); }
};

struct FallbackListSystemFx {
    static constexpr bool serves = true, lifo = false;
    static constexpr std::size_t max_size = 1 << 20, max_align = 4096, ask_align = 4096;
    ca::Fallback<ca::FreeList<ca::System>, ca::System> a{ca::FreeList<ca::System>(256, 64), ca::System{}};
    ~FallbackListSystemFx() { BOOST_TEST(a.primary().available() == 64u); }
};

// Both halves watched: a block routed to the wrong half is flagged by the secondary's checker
// (unknown pointer) or shows in the primary's count.
struct CheckedFallbackFx {
    static constexpr bool serves = true, lifo = false;
    static constexpr std::size_t max_size = 1 << 20, max_align = 4096, ask_align = 4096;
    using Sys = CheckingAllocator<ca::System>;
    using List = ca::FreeList<ca::System>;
    Sys sys;
    ca::Fallback<List, Ref<Sys>> a{List(128, 32), Ref<Sys>(sys)};
    ~CheckedFallbackFx() {
        BOOST_TEST(a.primary().available() == 32u);
        BOOST_TEST(sys.errors() == 0u, sys.last_error());
        BOOST_TEST(sys.live_count() == 0u);
    }
};

struct FallbackSegregatedJemallocFx {
    static constexpr bool serves = true, lifo = false;
    static constexpr std::size_t max_size = 1 << 20, max_align = 4096, ask_align = 65536;
    ca::Fallback<ca::Segregated<ca::SpinLock>, ca::Jemalloc> a;
    FallbackSegregatedJemallocFx() {
        BOOST_REQUIRE(a.primary().init(ca::SizeClasses::defaults(), 256 * 1024));
    }
};

struct ProxySystemFx {
    static constexpr bool serves = true, lifo = false;
    static constexpr std::size_t max_size = 1 << 20, max_align = 4096, ask_align = 4096;
    ca::Proxy<ca::System, ca::CountingLogger> a;
    ~ProxySystemFx() {
        const auto& log = a.logger();
        BOOST_TEST(log.live_blocks == 0u);
        // (live_bytes is not checked: blocks here may come back with their requested size,
        // which the contract allows and CountingLogger cannot tell from the usable size.)
    }
};

struct SystemFx {
    static constexpr bool serves = true, lifo = false;
    static constexpr std::size_t max_size = 1 << 20, max_align = 4096, ask_align = 4096;
    ca::System a;
};

// A region never reuses a block: big enough that every test here fits without reuse.
struct RegionFx {
    static constexpr bool serves = true, lifo = false;
    static constexpr std::size_t max_size = 1 << 20, max_align = 4096, ask_align = 65536;
    ca::testing::HeapParent heap;
    Block buffer = heap.allocate(64 << 20, 64);
    ca::Region<ca::ExternalStorage, ca::AtomicBump> a{ca::ExternalStorage(buffer)};
    ~RegionFx() { heap.deallocate(buffer); }
};

struct JemallocFx {
    static constexpr bool serves = true, lifo = false;
    static constexpr std::size_t max_size = 1 << 20, max_align = 4096, ask_align = 65536;
    ca::Jemalloc a;
};

using Fixtures = std::tuple<NullFx, FreeListFx, CheckedFreeListFx, SegregatedFx<ca::NoLock>,
                            SegregatedFx<ca::SpinLock>, CachedFx, FallbackListSystemFx, CheckedFallbackFx,
                            FallbackSegregatedJemallocFx, ProxySystemFx, SystemFx, JemallocFx, RegionFx>;

template <class F>
using AllocOf = std::remove_reference_t<decltype(std::declval<F&>().a)>;

// A block from `a` is acceptable: empty and sizeless, or aligned and at least n long.
template <class A>
void check_block(Block b, std::size_t n, std::size_t align) {
    if (!b) {
        BOOST_TEST((b == Block{}), "a failure must be the empty block");
        return;
    }
    BOOST_TEST(ca::is_aligned(b.ptr, align), "allocate(" << n << ", " << align << ")");
    BOOST_TEST(b.size >= n);
}

}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(zero_size, F, Fixtures) {
    F f;
    Block b = f.a.allocate(0, ca::kMinAlign);
    check_block<AllocOf<F>>(b, 0, ca::kMinAlign);
    BOOST_TEST(static_cast<bool>(b) == F::serves);
    if (b) fill(b.ptr, b.size, 1);
    f.a.deallocate(b);
    f.a.deallocate(Block{});  // the empty block back: harmless everywhere
}

BOOST_AUTO_TEST_CASE_TEMPLATE(alignments, F, Fixtures) {
    F f;
    for (std::size_t align = 1; align <= F::ask_align; align *= 2)
        for (std::size_t n : {std::size_t{1}, std::size_t{8}, std::size_t{100}, F::max_size}) {
            Block b = f.a.allocate(n, align);
            check_block<AllocOf<F>>(b, n, align);
            const bool promised = F::serves && n <= F::max_size && align <= F::max_align;
            if (promised) BOOST_TEST(static_cast<bool>(b), "allocate(" << n << ", " << align << ")");
            if (b) {
                fill(b.ptr, n, static_cast<unsigned>(align));
                BOOST_TEST(holds(b.ptr, n, static_cast<unsigned>(align)));
            }
            f.a.deallocate(b);
        }
}

// Fill until the allocator says no (or a bound), check nothing overlapped, give all back; the
// same number must fit again.
BOOST_AUTO_TEST_CASE_TEMPLATE(fill_then_free_all, F, Fixtures) {
    F f;
    constexpr std::size_t kBound = 6000, kSize = 64;
    std::size_t first = 0;
    std::mt19937 rng(42);
    for (int round = 0; round < 3; ++round) {
        std::vector<Block> blocks;
        while (blocks.size() < kBound) {
            Block b = f.a.allocate(kSize, ca::kMinAlign);
            if (!b) break;
            fill(b.ptr, kSize, static_cast<unsigned>(blocks.size()));
            blocks.push_back(b);
        }
        if (round == 0) first = blocks.size();
        BOOST_TEST(blocks.size() == first);
        if (F::serves) BOOST_TEST(blocks.size() > 0u);
        for (std::size_t i = 0; i < blocks.size(); ++i)
            if (!holds(blocks[i].ptr, kSize, static_cast<unsigned>(i))) BOOST_FAIL("block " << i << " overwritten");
        std::shuffle(blocks.begin(), blocks.end(), rng);
        for (Block b : blocks) f.a.deallocate(b);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(reallocate_keeps_contents, F, Fixtures) {
    F f;
    Block b = f.a.allocate(24, ca::kMinAlign);
    if constexpr (!F::serves) {
        BOOST_TEST(!ca::reallocate(f.a, b, 64));
        BOOST_TEST((b == Block{}));
        return;
    }
    BOOST_REQUIRE(b);
    fill(b.ptr, 24, 1);
    BOOST_TEST(ca::reallocate(f.a, b, F::max_size));  // grow
    BOOST_TEST(b.size >= F::max_size);
    BOOST_TEST(holds(b.ptr, 24, 1));
    fill(b.ptr, F::max_size, 2);
    BOOST_TEST(ca::reallocate(f.a, b, 8));  // shrink
    BOOST_TEST(b.size >= 8u);
    BOOST_TEST(holds(b.ptr, 8, 2));
    BOOST_TEST(ca::reallocate(f.a, b, 100));  // and grow again from the shrunk size
    BOOST_TEST(holds(b.ptr, 8, 2));
    f.a.deallocate(b);
    // From nothing: an allocation.
    Block fresh;
    BOOST_TEST(ca::reallocate(f.a, fresh, 48));
    BOOST_TEST(fresh.ptr != nullptr);
    BOOST_TEST(fresh.size >= 48u);
    f.a.deallocate(fresh);
    // Past what it can do: a clean failure that leaves the block alone (bounded ones only).
    if constexpr (F::max_size < 4096) {
        Block c = f.a.allocate(16, ca::kMinAlign);
        fill(c.ptr, 16, 3);
        const Block before = c;
        BOOST_TEST(!ca::reallocate(f.a, c, 1u << 20));
        BOOST_TEST((c == before));
        BOOST_TEST(holds(c.ptr, 16, 3));
        f.a.deallocate(c);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(owns_its_blocks_only, F, Fixtures) {
    F f;
    using A = AllocOf<F>;
    if constexpr (ca::BlockOwner<A>) {
        std::vector<Block> blocks;
        for (std::size_t n : {std::size_t{1}, std::size_t{16}, std::size_t{100}, std::size_t{256}})
            if (Block b = f.a.allocate(std::min(n, F::max_size), ca::kMinAlign)) blocks.push_back(b);
        BOOST_TEST(blocks.size() == (F::serves ? 4u : 0u));
        for (Block b : blocks) BOOST_TEST(f.a.owns(b.ptr));
        auto heap = std::make_unique<long>(0);
        BOOST_TEST(!ca::testing::owns_own_stack_address(f.a));
        BOOST_TEST(!f.a.owns(heap.get()));
        BOOST_TEST(!f.a.owns(nullptr));
        for (Block b : blocks) f.a.deallocate(b);
    } else {
        BOOST_TEST_MESSAGE("not a BlockOwner");
        BOOST_TEST(!ca::BlockOwner<A>);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(reuse_after_free, F, Fixtures) {
    F f;
    for (std::size_t n : {std::size_t{16}, std::size_t{64}, F::max_size}) {
        if (!F::serves) {
            BOOST_TEST(!f.a.allocate(n, ca::kMinAlign));
            continue;
        }
        Block a = f.a.allocate(n, ca::kMinAlign);
        BOOST_REQUIRE(a);
        fill(a.ptr, n, 4);
        f.a.deallocate(a);
        Block b = f.a.allocate(n, ca::kMinAlign);
        BOOST_REQUIRE(b);
        if (F::lifo) BOOST_TEST(b.ptr == a.ptr);
        fill(b.ptr, n, 5);
        BOOST_TEST(holds(b.ptr, n, 5));
        f.a.deallocate(b);
    }
}

// A random mix through a CheckingAllocator in front: it flags a block handed out twice, a
// misaligned or short one; everything goes back at the end.
BOOST_AUTO_TEST_CASE_TEMPLATE(random_mix_under_a_checker, F, Fixtures) {
    F f;
    using A = AllocOf<F>;
    CheckingAllocator<Ref<A>> checker{Ref<A>(f.a)};
    std::mt19937 rng(7);
    struct Live {
        Block b;
        std::size_t n;
        unsigned seed;
    };
    std::vector<Live> live;
    std::size_t failures = 0;
    for (unsigned i = 0; i < 3000; ++i) {
        const unsigned op = rng() % 10;
        if (op < 5 || live.empty()) {
            std::size_t n = F::max_size ? rng() % (std::min<std::size_t>(F::max_size, 5000) + 1) : 8;
            std::size_t align = std::size_t{1} << (rng() % 13);  // 1..4096
            align = std::min(align, std::max<std::size_t>(F::max_align, 1));
            Block b = checker.allocate(n, align);
            if (!b) {
                ++failures;
                continue;
            }
            fill(b.ptr, n, i);
            live.push_back({b, n, i});
        } else if (op < 8) {
            std::size_t k = rng() % live.size();
            if (!holds(live[k].b.ptr, live[k].n, live[k].seed)) BOOST_FAIL("contents lost");
            checker.deallocate(Block{live[k].b.ptr, live[k].n});  // the requested size is valid
            live[k] = live.back();
            live.pop_back();
        } else if constexpr (ca::Reallocating<A> || ca::Expanding<A>) {
            std::size_t k = rng() % live.size();
            std::size_t n = rng() % (std::min<std::size_t>(F::max_size, 5000) + 1);
            Live& l = live[k];
            if (ca::reallocate(checker, l.b, n)) {
                if (!holds(l.b.ptr, std::min(l.n, n), l.seed)) BOOST_FAIL("realloc lost contents");
                fill(l.b.ptr, n, l.seed);
                l.n = n;
            }
        }
    }
    for (Live& l : live) checker.deallocate(l.b);
    BOOST_TEST(checker.errors() == 0u, checker.last_error());
    BOOST_TEST(checker.live_count() == 0u);
    if (F::serves) BOOST_TEST(checker.allocations() > 0u);
    if (!F::serves) BOOST_TEST(failures > 0u);
}
