#define BOOST_TEST_MODULE thread_cached
#include <boost/test/unit_test.hpp>

#include <chainalloc/fallback.hpp>
#include <chainalloc/system.hpp>
#include <chainalloc/thread_cached.hpp>

#include "conformance.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ca = chainalloc;
using ca::Block;
using ca::SizeClasses;
using ca::testing::fill;
using ca::testing::holds;

namespace {
struct TagA {};
struct TagB {};
using Cached = ca::ThreadCached<TagA>;

constexpr std::size_t kCap = std::size_t{1} << 30;  // counted: out_bytes shows what the program holds

std::unique_ptr<Cached> make(std::uint32_t limit = 64) {
    auto c = std::make_unique<Cached>();
    BOOST_REQUIRE(c->init(SizeClasses::defaults(), limit, kCap));
    return c;
}
}  // namespace

static_assert(ca::BlockOwner<Cached> && ca::UsableSize<Cached> && ca::TryDeallocating<Cached> &&
              ca::Expanding<Cached> && ca::GoodSize<Cached>);
static_assert(ca::ThreadFlushing<Cached> && ca::ForkAware<Cached>);
static_assert(!ca::AllocatingZeroed<Cached> && !ca::Reallocating<Cached> && !ca::DeallocatingAll<Cached>);
static_assert(ca::ThreadFlushing<ca::Fallback<Cached, ca::System>> && ca::ForkAware<ca::Fallback<Cached, ca::System>>);

// Freed blocks wait in the thread's cache until the thread flushes; the cap counts only what
// the program holds, so they are not counted meanwhile.
BOOST_AUTO_TEST_CASE(freed_blocks_wait_until_the_thread_flushes) {
    auto c = make();
    std::vector<Block> blocks;
    for (int i = 0; i < 10; ++i) blocks.push_back(c->allocate(50, 16));
    for (Block b : blocks) {
        BOOST_REQUIRE(b);
        BOOST_TEST(b.size == 64u);
        BOOST_TEST(c->owns(b.ptr));
        BOOST_TEST(c->usable_size(b.ptr) == 64u);
    }
    BOOST_TEST(c->central().out_bytes() == 10 * 64u);
    for (Block b : blocks) c->deallocate(b);
    BOOST_TEST(c->cached_blocks() >= 10u);
    BOOST_TEST(c->central().out_bytes() == 0u);
    Block again = c->allocate(64, 16);  // from the cache: the last one freed
    BOOST_TEST(again.ptr == blocks.back().ptr);
    BOOST_TEST(c->try_deallocate(again));
    alignas(16) char foreign[64];
    BOOST_TEST(!c->try_deallocate(Block{foreign, sizeof foreign}));
    c->flush_thread();
    BOOST_TEST(c->cached_blocks() == 0u);
    BOOST_TEST(c->central().out_bytes() == 0u);
    // Past the largest class: a capped layer serves it, as a large block of whole slices.
    Block large = c->allocate(40000, 16);
    BOOST_REQUIRE(large);
    BOOST_TEST(large.size == 64 * 1024u);
    BOOST_TEST(c->central().out_bytes() == 64 * 1024u);
    c->deallocate(large);
    BOOST_TEST(c->central().out_bytes() == 0u);
}

// Under a cap, blocks idle in one thread's cache never make another thread's request fail.
BOOST_AUTO_TEST_CASE(idle_caches_do_not_count_against_the_cap) {
    auto c = std::make_unique<Cached>();
    constexpr std::size_t kSmallCap = 1 << 20;
    BOOST_REQUIRE(c->init(SizeClasses::defaults(), 512, kSmallCap));
    auto fill_up = [&c] {
        std::vector<Block> held;
        std::size_t bytes = 0;
        while (Block b = c->allocate(1000, 16)) {
            held.push_back(b);
            bytes += b.size;
        }
        for (Block b : held) c->deallocate(b);  // into this thread's cache
        return bytes;
    };
    std::size_t first = 0, second = 0;
    std::thread([&] { first = fill_up(); }).join();  // its cache is never flushed
    std::thread([&] { second = fill_up(); }).join();
    BOOST_TEST(first > kSmallCap - 1024);
    BOOST_TEST(second == first);
}

// Every thread works on its own cache; once each has flushed, nothing is out.
BOOST_AUTO_TEST_CASE(threads_flush_at_exit) {
    auto c = make(16);
    // Boost.Test's assertions are not thread-safe: the threads count, the test checks after.
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t)
        threads.emplace_back([&c, &bad, t] {
            std::vector<Block> live;
            for (unsigned i = 0; i < 3000; ++i) {
                Block b = c->allocate(16 + (i * 7 + t) % 2000, 16);
                if (!b) {
                    ++bad;
                    continue;
                }
                fill(b.ptr, 16, t);
                live.push_back(b);
                if (live.size() > 50) {
                    if (!holds(live.front().ptr, 16, t)) ++bad;
                    c->deallocate(live.front());
                    live.erase(live.begin());
                }
            }
            for (Block b : live) c->deallocate(b);
            c->flush_thread();  // the thread's exit path
        });
    for (auto& th : threads) th.join();
    BOOST_TEST(bad.load() == 0);
    BOOST_TEST(c->central().out_bytes() == 0u);
}

// One object per tag: another tag has caches of its own.
BOOST_AUTO_TEST_CASE(tags_keep_caches_apart) {
    auto a = make();
    auto b = std::make_unique<ca::ThreadCached<TagB>>();
    BOOST_REQUIRE(b->init(SizeClasses::defaults(), 64, 0));
    a->deallocate(a->allocate(32, 16));
    BOOST_TEST(a->cached_blocks() == 8u);  // a first refill takes kFirstBatch blocks
    BOOST_TEST(b->cached_blocks() == 0u);
    a->flush_thread();
    b->fork_prepare();
    b->fork_child();
}

// Remote frees: blocks made by two producer threads are freed by two consumer threads, so every
// block goes home through another thread's cache and the spans' lock-free returned lists. Under
// TSan this is the race check of those lists; here, every block keeps its contents until it is
// freed, and once all threads have flushed, the spans drain and go back to the page heap.
BOOST_AUTO_TEST_CASE(remote_frees_go_home) {
    auto c = make(32);
    constexpr int kPairs = 2, kBlocks = 20000;
    struct Handoff {
        std::mutex lock;
        std::vector<Block> queue;
        bool done = false;
    };
    Handoff handoffs[kPairs];
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kPairs; ++t) {
        threads.emplace_back([&, t] {  // producer
            for (int i = 0; i < kBlocks; ++i) {
                Block b = c->allocate(16 + (i * 37 + t) % 3000, 16);
                if (!b) {
                    ++bad;
                    continue;
                }
                fill(b.ptr, 16, static_cast<unsigned>(i));
                std::lock_guard<std::mutex> g(handoffs[t].lock);
                handoffs[t].queue.push_back(Block{b.ptr, static_cast<std::size_t>(i)});
            }
            std::lock_guard<std::mutex> g(handoffs[t].lock);
            handoffs[t].done = true;
            c->flush_thread();
        });
        threads.emplace_back([&, t] {  // consumer
            for (;;) {
                std::vector<Block> got;
                bool done;
                {
                    std::lock_guard<std::mutex> g(handoffs[t].lock);
                    got.swap(handoffs[t].queue);
                    done = handoffs[t].done;
                }
                for (Block b : got) {
                    if (!holds(b.ptr, 16, static_cast<unsigned>(b.size))) ++bad;
                    c->deallocate(Block{b.ptr, 16});
                }
                if (done && got.empty()) break;
                if (got.empty()) std::this_thread::yield();
            }
            c->flush_thread();
        });
    }
    for (auto& th : threads) th.join();
    BOOST_TEST(bad.load() == 0);
    BOOST_TEST(c->central().out_bytes() == 0u);
    c->central().trim();  // drains what was returned without the lock, and purges
    BOOST_TEST(c->central().carved_bytes() == 0u);  // every span went back to the page heap
    BOOST_TEST(c->central().dirty_bytes() == 0u);
}
