#define BOOST_TEST_MODULE thread_cache
#include <boost/test/unit_test.hpp>

#include <chainalloc/thread_cache.hpp>

#include "conformance.hpp"

#include <memory>
#include <set>
#include <thread>
#include <type_traits>
#include <vector>

using chainalloc::FreeNode;
using chainalloc::Segregated;
using chainalloc::SizeClasses;
using chainalloc::SpinLock;
namespace ca = chainalloc;

using Central = Segregated<SpinLock>;
using Cache = ca::ThreadCache<Central>;

// It lives in initial-exec TLS: no constructor, no destructor, all-zero is empty.
static_assert(std::is_trivially_default_constructible_v<Cache>);
static_assert(std::is_trivially_destructible_v<Cache>);

namespace {

std::unique_ptr<Central> make_central(std::size_t max_bytes = 0) {
    auto c = std::make_unique<Central>();
    BOOST_REQUIRE(c->init(SizeClasses::defaults(), max_bytes));
    return c;
}

// Every block of class c the central has carved, taken back from its free lists; fails the
// test if any is missing (still cached somewhere, or lost).
std::set<void*> take_all(Central& central, std::size_t c) {
    const auto n = static_cast<std::uint32_t>(central.carved_bytes(c) / central.classes().size_of(c));
    const std::size_t carved = central.carved_bytes();
    FreeNode* head = nullptr;
    BOOST_TEST(central.take(c, n, head) == n);
    BOOST_TEST(central.carved_bytes() == carved);  // all from the lists, nothing fresh
    std::set<void*> out;
    for (FreeNode* x = head; x; x = ca::next_of(x)) out.insert(x);
    BOOST_TEST(out.size() == n);
    return out;
}

thread_local Cache tls_cache;  // as the preload keeps it: zero-initialised TLS

}  // namespace

BOOST_AUTO_TEST_CASE(zero_is_an_empty_cache) {
    BOOST_TEST(tls_cache.cached_blocks() == 0u);
    Cache local{};
    BOOST_TEST(local.cached_blocks() == 0u);
    for (const auto& bin : local.bins) {
        BOOST_TEST(bin.head == nullptr);
        BOOST_TEST(bin.count == 0u);
    }
}

// try_allocate only pops: an empty bin gives nullptr and takes nothing from the central lists
// (the preload's fast path; its slow path refills).
BOOST_AUTO_TEST_CASE(try_allocate_never_refills) {
    auto central = make_central();
    Cache cache{};
    const std::size_t c = central->classes().class_of(48);
    BOOST_TEST(cache.try_allocate(c) == nullptr);
    BOOST_TEST(central->carved_bytes() == 0u);
    void* p = cache.allocate(*central, c, 8);  // a refill: p, and 3 more cached
    BOOST_REQUIRE(p != nullptr);
    BOOST_TEST(cache.bins[c].count == 3u);
    cache.deallocate(*central, c, p, 8);
    BOOST_TEST(cache.try_allocate(c) == p);  // last in, first out
    BOOST_TEST(cache.bins[c].count == 3u);
    const std::size_t carved = central->carved_bytes();
    for (int i = 0; i < 3; ++i) BOOST_TEST(cache.try_allocate(c) != nullptr);
    BOOST_TEST(cache.try_allocate(c) == nullptr);
    BOOST_TEST(central->carved_bytes() == carved);
}

// Refills start small and double up to half the limit: 8, 16, 16 ... blocks for a limit of 32.
BOOST_AUTO_TEST_CASE(refills_grow_to_half_the_limit) {
    auto central = make_central();
    Cache cache{};
    const std::size_t c = central->classes().class_of(64);
    BOOST_TEST(central->carved_bytes(c) == 0u);
    void* first = cache.allocate(*central, c, 32);
    BOOST_REQUIRE(first);
    BOOST_TEST(central->owns(first));
    BOOST_TEST(central->class_of_pointer(first) == c);
    BOOST_TEST(central->carved_bytes(c) == 8 * 64u);  // the first batch
    BOOST_TEST(cache.bins[c].count == 7u);
    BOOST_TEST(cache.cached_blocks() == 7u);
    std::set<void*> seen{first};
    for (int i = 0; i < 7; ++i) seen.insert(cache.allocate(*central, c, 32));
    BOOST_TEST(seen.size() == 8u);
    BOOST_TEST(central->carved_bytes(c) == 8 * 64u);  // served from the bin alone
    BOOST_TEST(cache.bins[c].count == 0u);
    seen.insert(cache.allocate(*central, c, 32));  // dry: the next batch, twice as large
    BOOST_TEST(seen.size() == 9u);
    BOOST_TEST(central->carved_bytes(c) == 24 * 64u);
    BOOST_TEST(cache.bins[c].count == 15u);
    for (int i = 0; i < 15; ++i) seen.insert(cache.allocate(*central, c, 32));
    seen.insert(cache.allocate(*central, c, 32));  // and no larger than half the limit
    BOOST_TEST(central->carved_bytes(c) == 40 * 64u);
    BOOST_TEST(cache.bins[c].count == 15u);
    BOOST_TEST(seen.size() == 25u);
    BOOST_TEST(central->carved_bytes() == 40 * 64u);  // no other class touched
}

BOOST_AUTO_TEST_CASE(refill_prefers_central_free_blocks) {
    auto central = make_central();
    const std::size_t c = central->classes().class_of(128);
    std::vector<void*> direct;
    for (int i = 0; i < 8; ++i) direct.push_back(central->allocate_class(c));
    for (void* p : direct) central->deallocate_class(c, p);
    Cache cache{};
    void* p = cache.allocate(*central, c, 16);  // batch of 8: exactly the free ones
    BOOST_TEST(central->carved_bytes(c) == 8 * 128u);
    std::set<void*> got{p};
    while (cache.bins[c].count) got.insert(cache.allocate(*central, c, 16));
    BOOST_TEST((got == std::set<void*>(direct.begin(), direct.end())));
}

BOOST_AUTO_TEST_CASE(bin_never_exceeds_its_limit) {
    auto central = make_central();
    Cache cache{};
    const std::size_t c = central->classes().class_of(32);
    constexpr std::uint32_t kLimit = 32;
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(cache.allocate(*central, c, kLimit));
    // Drain the bin first so the frees below start from empty.
    while (cache.bins[c].count) blocks.push_back(cache.allocate(*central, c, kLimit));
    bool released = false;
    for (void* p : blocks) {
        std::uint32_t before = cache.bins[c].count;
        cache.deallocate(*central, c, p, kLimit);
        BOOST_TEST(cache.bins[c].count <= kLimit);
        if (before == kLimit) {  // that free overflowed: half the limit stays
            BOOST_TEST(cache.bins[c].count == kLimit / 2);
            released = true;
        }
    }
    BOOST_TEST(released);
    // What the cache gave back is on the central list, and what it kept is in the bin.
    cache.flush_all(*central);
    BOOST_TEST(take_all(*central, c).size() == blocks.size());
}

BOOST_AUTO_TEST_CASE(tiny_limits) {
    auto central = make_central();
    const std::size_t c = central->classes().class_of(16);
    for (std::uint32_t limit : {0u, 1u}) {
        Cache cache{};
        void* a = cache.allocate(*central, c, limit);  // batch of one
        void* b = cache.allocate(*central, c, limit);
        BOOST_REQUIRE(a);
        BOOST_REQUIRE(b);
        BOOST_TEST(cache.bins[c].count == 0u);
        cache.deallocate(*central, c, a, limit);
        BOOST_TEST(cache.bins[c].count <= limit);
        cache.deallocate(*central, c, b, limit);
        BOOST_TEST(cache.bins[c].count <= limit);
        cache.flush_all(*central);
        BOOST_TEST(cache.cached_blocks() == 0u);
    }
    BOOST_TEST(take_all(*central, c).size() == 2u);  // a and b reused in round two
}

BOOST_AUTO_TEST_CASE(flush_all_returns_everything) {
    auto central = make_central();
    Cache cache{};
    const std::size_t classes[] = {0, 3, 10, 20, 39};
    std::vector<std::pair<std::size_t, void*>> held;
    for (std::size_t c : classes)
        for (int i = 0; i < 5; ++i) held.push_back({c, cache.allocate(*central, c, 64)});
    for (auto [c, p] : held) cache.deallocate(*central, c, p, 64);
    BOOST_TEST(cache.cached_blocks() > 0u);
    cache.flush_all(*central);
    BOOST_TEST(cache.cached_blocks() == 0u);
    for (const auto& bin : cache.bins) BOOST_TEST(bin.head == nullptr);
    // The central can serve every carved block again without carving.
    for (std::size_t c : classes) {
        std::set<void*> back = take_all(*central, c);
        BOOST_TEST(!back.empty());  // what the class kept (spans left empty went back to the heap)
    }
}

// The cap is charged where blocks reach the program (Segregated::charge), not here: a cache
// fills from a capped central like from any other, and its own free block comes back first.
BOOST_AUTO_TEST_CASE(caches_fill_regardless_of_the_cap) {
    auto central = make_central(5 * 64);
    Cache cache{};
    const std::size_t c = central->classes().class_of(64);
    void* p = cache.allocate(*central, c, 32);  // a first batch of 8, past the 5 blocks of the cap
    BOOST_REQUIRE(p);
    BOOST_TEST(cache.bins[c].count == 7u);
    BOOST_TEST(central->out_bytes() == 0u);  // nothing charged: that is the caller's to do
    cache.deallocate(*central, c, p, 32);
    BOOST_TEST(cache.allocate(*central, c, 32) == p);  // its own free block, no central trip
}

// A block freed on another thread lands in that thread's cache; once that thread flushes
// (as at its exit), the central hands it out again, and nothing new is carved.
BOOST_AUTO_TEST_CASE(blocks_freed_elsewhere_come_home_after_flush) {
    auto central = make_central();
    const std::size_t c = central->classes().class_of(512);
    constexpr std::uint32_t kLimit = 1024;  // big enough that the other thread keeps them all
    std::vector<void*> mine;
    for (int i = 0; i < 100; ++i) {
        void* p = tls_cache.allocate(*central, c, kLimit);
        BOOST_REQUIRE(p);
        ca::testing::fill(p, 512, i);
        mine.push_back(p);
    }
    tls_cache.flush_all(*central);  // this thread's leftovers go back too
    const std::size_t carved = central->carved_bytes();
    std::size_t other_cached = 0, other_after_flush = 0;
    std::thread other([&] {
        for (void* p : mine) tls_cache.deallocate(*central, c, p, kLimit);
        other_cached = tls_cache.cached_blocks();
        tls_cache.flush_all(*central);
        other_after_flush = tls_cache.cached_blocks();
    });
    other.join();
    BOOST_TEST(other_cached == 100u);
    BOOST_TEST(other_after_flush == 0u);
    std::set<void*> again;
    for (int i = 0; i < 100; ++i) again.insert(tls_cache.allocate(*central, c, kLimit));
    // All reused: the span they came from serves them again (its last few blocks may be
    // carved for the grown batch), no new span.
    BOOST_TEST(central->carved_bytes() <= 64 * 1024u);
    BOOST_TEST(carved <= 64 * 1024u);
    std::set<void*> all(again);
    while (tls_cache.bins[c].count) all.insert(tls_cache.allocate(*central, c, kLimit));
    for (void* p : mine) BOOST_TEST(all.count(p) == 1u);
    tls_cache.flush_all(*central);
}

// A collection gives back three quarters of what a bin never used since the last one (its low
// water), the oldest blocks first: what stays is the top of the stack, the last freed.
BOOST_AUTO_TEST_CASE(collect_gives_back_the_oldest_idle_blocks) {
    auto central = make_central();
    Cache cache{};
    const std::size_t c = central->classes().class_of(64);
    constexpr std::uint32_t kLimit = 256;
    std::vector<void*> freed;
    for (int i = 0; i < 64; ++i) freed.push_back(cache.allocate(*central, c, kLimit));
    while (cache.bins[c].count) freed.push_back(cache.allocate(*central, c, kLimit));
    for (void* p : freed) cache.deallocate(*central, c, p, kLimit);  // freed.back() on top
    const std::uint32_t held = cache.bins[c].count;
    BOOST_TEST(held == freed.size());

    cache.collect(*central);  // the bin ran dry in this interval: its low water is 0
    BOOST_TEST(cache.bins[c].count == held);
    cache.collect(*central);  // untouched through a whole interval: 3/4 go back
    const std::uint32_t kept = held - (held - held / 4);
    BOOST_TEST(cache.bins[c].count == kept);
    for (std::uint32_t i = 0; i < kept; ++i)
        BOOST_TEST(cache.try_allocate(c) == freed[freed.size() - 1 - i]);
    BOOST_TEST(cache.try_allocate(c) == nullptr);
    // The oldest went to the central lists, whole (the newest were handed out again above).
    for (std::uint32_t i = 0; i < kept; ++i) cache.deallocate(*central, c, freed[freed.size() - 1 - i], kLimit);
    cache.flush_all(*central);
    BOOST_TEST(take_all(*central, c).size() == freed.size());
}

// A bin in use keeps what it uses: only its low water goes, and a bin that ran dry keeps all.
BOOST_AUTO_TEST_CASE(collect_keeps_what_a_bin_uses) {
    auto central = make_central();
    Cache cache{};
    const std::size_t c = central->classes().class_of(128);
    std::vector<void*> blocks;
    for (int i = 0; i < 40; ++i) blocks.push_back(cache.allocate(*central, c, 128));
    for (void* p : blocks) cache.deallocate(*central, c, p, 128);
    cache.collect(*central);
    const std::uint32_t held = cache.bins[c].count;
    // Each interval the program takes 30 blocks and gives them back: at least held - 30 idle.
    for (int round = 0; round < 3; ++round) {
        std::vector<void*> used;
        for (int i = 0; i < 30; ++i) used.push_back(cache.allocate(*central, c, 128));
        for (void* p : used) cache.deallocate(*central, c, p, 128);
        const std::uint32_t before = cache.bins[c].count;
        const std::uint32_t low = before >= 30 ? before - 30 : 0;
        cache.collect(*central);
        BOOST_TEST(cache.bins[c].count == before - (low - low / 4));
        BOOST_TEST(cache.bins[c].count >= 30u);  // what the program used every interval stays
    }
    BOOST_TEST(cache.bins[c].count < held);
    cache.flush_all(*central);
}

// Collections run by themselves: a thread busy with other classes (refills and overflows on
// its slow path) gives back a class it no longer uses.
BOOST_AUTO_TEST_CASE(a_class_out_of_use_goes_back_as_others_work) {
    auto central = make_central();
    Cache cache{};
    const std::size_t idle = central->classes().class_of(256);
    const std::size_t busy = central->classes().class_of(1024);
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(cache.allocate(*central, idle, 512));
    for (void* p : blocks) cache.deallocate(*central, idle, p, 512);
    const std::uint32_t held = cache.bins[idle].count;
    BOOST_REQUIRE(held >= 100u);
    // Each round: 3 refills and an overflow of the busy class (limit 2), 4 slow-path events.
    int rounds = 0;
    while (cache.bins[idle].count > held / 4 && rounds < 4 * int(Cache::kCollectEvery)) {
        void* q[3];
        for (void*& p : q) p = cache.allocate(*central, busy, 2);
        for (void* p : q) cache.deallocate(*central, busy, p, 2);
        ++rounds;
    }
    BOOST_TEST(cache.bins[idle].count <= held / 4 + 1);
    BOOST_TEST(rounds <= int(Cache::kCollectEvery));  // two collections: 2 * 64 events / 4 a round
    cache.flush_all(*central);
}
