#define BOOST_TEST_MODULE proxy
#include <boost/test/unit_test.hpp>

#include <chainalloc/free_list.hpp>
#include <chainalloc/null.hpp>
#include <chainalloc/proxy.hpp>
#include <chainalloc/system.hpp>

#include "conformance.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

using chainalloc::Block;
using chainalloc::CountingLogger;
using chainalloc::Null;
using chainalloc::Proxy;
using chainalloc::System;
using chainalloc::testing::fill;
using chainalloc::testing::holds;
namespace ca = chainalloc;

using List = ca::FreeList<ca::System>;

namespace {

// Records every event verbatim.
struct Event {
    enum Kind { Allocate, Deallocate, Reallocate } kind;
    std::size_t size = 0, align = 0;
    Block old{}, result{};
    bool ok = false;
    friend bool operator==(const Event&, const Event&) = default;
};

struct RecordingLogger {
    std::vector<Event>* events;
    void on_allocate(std::size_t n, std::size_t align, Block result) {
        events->push_back({Event::Allocate, n, align, {}, result, static_cast<bool>(result)});
    }
    void on_deallocate(Block b) { events->push_back({Event::Deallocate, 0, 0, b, {}, true}); }
    void on_reallocate(Block old, std::size_t n, Block result, bool ok) {
        events->push_back({Event::Reallocate, n, 0, old, result, ok});
    }
};

struct NoReallocEvent {
    void on_allocate(std::size_t, std::size_t, Block) {}
    void on_deallocate(Block) {}
};

}  // namespace

static_assert(ca::ProxyLogger<CountingLogger> && ca::ProxyLogger<RecordingLogger>);
static_assert(!ca::ProxyLogger<NoReallocEvent> && !ca::ProxyLogger<int>);

// A Proxy offers exactly the abilities of what it wraps.
template <class A>
constexpr bool same_abilities = ca::BlockOwner<Proxy<A, CountingLogger>> == ca::BlockOwner<A> &&
                                ca::Reallocating<Proxy<A, CountingLogger>> == ca::Reallocating<A> &&
                                ca::Expanding<Proxy<A, CountingLogger>> == ca::Expanding<A> &&
                                ca::GoodSize<Proxy<A, CountingLogger>> == ca::GoodSize<A>;
static_assert(same_abilities<System> && same_abilities<List> && same_abilities<Null>);
static_assert(ca::Reallocating<Proxy<System, CountingLogger>> && !ca::BlockOwner<Proxy<System, CountingLogger>> &&
              !ca::Expanding<Proxy<System, CountingLogger>> && !ca::GoodSize<Proxy<System, CountingLogger>>);
static_assert(ca::BlockOwner<Proxy<List, CountingLogger>> && ca::Expanding<Proxy<List, CountingLogger>> &&
              ca::GoodSize<Proxy<List, CountingLogger>> && !ca::Reallocating<Proxy<List, CountingLogger>>);
static_assert(sizeof(Proxy<System, RecordingLogger>) == sizeof(void*),
              "an empty inner allocator takes no room");

BOOST_AUTO_TEST_CASE(counting_logger_exact_figures) {
    Proxy<List, CountingLogger> p(List(64, 4));
    const CountingLogger& log = p.logger();
    std::vector<Block> blocks;
    for (int i = 0; i < 4; ++i) blocks.push_back(p.allocate(10, 16));
    BOOST_TEST(log.requests == 4u);
    BOOST_TEST(log.live_blocks == 4u);
    BOOST_TEST(log.live_bytes == 4 * 64u);  // usable sizes, not requests
    BOOST_TEST(log.peak_bytes == 4 * 64u);
    BOOST_TEST(!p.allocate(10, 16));
    BOOST_TEST(!p.allocate(100, 16));
    BOOST_TEST(log.refused == 2u);
    BOOST_TEST(log.requests == 4u);
    BOOST_TEST(log.live_blocks == 4u);

    p.deallocate(blocks[0]);
    p.deallocate(blocks[1]);
    BOOST_TEST(log.frees == 2u);
    BOOST_TEST(log.live_blocks == 2u);
    BOOST_TEST(log.live_bytes == 2 * 64u);
    BOOST_TEST(log.peak_bytes == 4 * 64u);  // the peak stays
    p.deallocate(Block{});                  // nothing given back: not counted
    BOOST_TEST(log.frees == 2u);

    BOOST_TEST(p.expand(blocks[2], 64));
    BOOST_TEST(log.reallocations == 1u);
    BOOST_TEST(log.live_bytes == 2 * 64u);
    // In place, as the preload counts it: the old block given back, the new one handed out.
    BOOST_TEST(log.frees == 3u);
    BOOST_TEST(log.requests == 5u);
    BOOST_TEST(log.bytes == 5 * 64u);
    BOOST_TEST(!p.expand(blocks[2], 65));
    BOOST_TEST(log.refused == 3u);  // two allocations and the expansion
    BOOST_TEST(log.reallocations == 1u);

    p.deallocate(blocks[2]);
    p.deallocate(blocks[3]);
    BOOST_TEST(log.live_blocks == 0u);
    BOOST_TEST(log.live_bytes == 0u);
    BOOST_TEST(log.frees == 5u);
    BOOST_TEST(log.requests == 5u);
    BOOST_TEST(log.refused == 3u);
    BOOST_TEST(log.peak_bytes == 4 * 64u);
}

BOOST_AUTO_TEST_CASE(counting_logger_follows_reallocation) {
    Proxy<System, CountingLogger> p;
    const CountingLogger& log = p.logger();
    Block b = p.allocate(100, 16);
    const std::size_t first = b.size;
    BOOST_TEST(log.live_bytes == first);
    fill(b.ptr, 100, 1);
    BOOST_TEST(p.reallocate(b, 100000));
    BOOST_TEST(holds(b.ptr, 100, 1));
    BOOST_TEST(log.reallocations == 1u);
    BOOST_TEST(log.live_blocks == 1u);
    BOOST_TEST(log.live_bytes == b.size);
    BOOST_TEST(log.peak_bytes == b.size);
    const std::size_t big = b.size;
    BOOST_TEST(p.reallocate(b, 50));
    BOOST_TEST(log.live_bytes == b.size);
    BOOST_TEST(log.peak_bytes == big);
    // Reallocating nothing is an allocation in disguise: one more live block.
    Block fresh;
    BOOST_TEST(p.reallocate(fresh, 64));
    BOOST_TEST(log.live_blocks == 2u);
    BOOST_TEST(log.reallocations == 3u);
    BOOST_TEST(log.live_bytes == b.size + fresh.size);
    BOOST_TEST(log.requests == 4u);  // the allocation and each reallocation's new block
    BOOST_TEST(log.frees == 2u);     // the two moved-from blocks; nothing for `fresh`
    p.deallocate(b);
    p.deallocate(fresh);
    BOOST_TEST(log.live_blocks == 0u);
    BOOST_TEST(log.live_bytes == 0u);
    BOOST_TEST(log.frees == 4u);
    BOOST_TEST(log.requests == log.frees);
}

// The generic reallocate on a Proxy over an expanding allocator: expand first, and on failure
// the copy's allocate and deallocate are logged as such.
BOOST_AUTO_TEST_CASE(generic_reallocate_is_logged_step_by_step) {
    Proxy<List, CountingLogger> p(List(64, 4));
    Block b = p.allocate(8, 16);
    BOOST_TEST(ca::reallocate(p, b, 32));  // in place
    BOOST_TEST(p.logger().reallocations == 1u);
    BOOST_TEST(!ca::reallocate(p, b, 65));  // expand fails, then the copy's allocate fails
    BOOST_TEST(p.logger().refused == 2u);     // both heard, each as a refusal
    BOOST_TEST(p.logger().live_blocks == 1u);
    p.deallocate(b);
}

BOOST_AUTO_TEST_CASE(custom_logger_sees_the_exact_blocks) {
    std::vector<Event> events;
    Proxy<List, RecordingLogger> p(List(128, 2), RecordingLogger{&events});
    Block a = p.allocate(100, 32);
    Block b = p.allocate(0, 1);
    Block fail = p.allocate(1, 16);
    BOOST_REQUIRE(events.size() == 3u);
    BOOST_TEST((events[0] == Event{Event::Allocate, 100, 32, {}, a, true}));
    BOOST_TEST((events[1] == Event{Event::Allocate, 0, 1, {}, b, true}));
    BOOST_TEST((events[2] == Event{Event::Allocate, 1, 16, {}, Block{}, false}));
    BOOST_TEST(!fail);

    Block before = a;
    BOOST_TEST(p.expand(a, 120));
    BOOST_TEST((events[3] == Event{Event::Reallocate, 120, 0, before, a, true}));
    BOOST_TEST(!p.expand(a, 129));
    BOOST_TEST((events[4] == Event{Event::Reallocate, 129, 0, a, a, false}));

    Block partial{b.ptr, 7};  // a size within [requested, returned] passes through unchanged
    p.deallocate(partial);
    p.deallocate(a);
    BOOST_REQUIRE(events.size() == 7u);
    BOOST_TEST((events[5] == Event{Event::Deallocate, 0, 0, partial, {}, true}));
    BOOST_TEST((events[6] == Event{Event::Deallocate, 0, 0, a, {}, true}));
    BOOST_TEST(p.inner().available() == 2u);  // and the inner allocator got them
}

BOOST_AUTO_TEST_CASE(custom_logger_sees_moves) {
    std::vector<Event> events;
    Proxy<System, RecordingLogger> p(System{}, RecordingLogger{&events});
    Block b = p.allocate(16, 16);
    Block old = b;
    BOOST_TEST(p.reallocate(b, 1 << 20));  // glibc moves a block this much larger
    BOOST_REQUIRE(events.size() == 2u);
    BOOST_TEST((events[1] == Event{Event::Reallocate, std::size_t{1} << 20, 0, old, b, true}));
    BOOST_TEST(events[1].result.size >= (1u << 20));
    p.deallocate(b);
    BOOST_TEST((events.back() == Event{Event::Deallocate, 0, 0, b, {}, true}));
}

BOOST_AUTO_TEST_CASE(forwarded_abilities_answer_as_the_inner_does) {
    Proxy<List, CountingLogger> p(List(256, 4));
    Block b = p.allocate(1, 16);
    BOOST_TEST(p.owns(b.ptr));
    BOOST_TEST(p.inner().owns(b.ptr));
    int local;
    BOOST_TEST(!p.owns(&local));
    BOOST_TEST(!ca::testing::owns_own_stack_address(p));
    BOOST_TEST(p.good_size(1) == 256u);
    BOOST_TEST(p.good_size(257) == 0u);
    p.deallocate(b);

    Proxy<Null, CountingLogger> n;
    Block e;
    BOOST_TEST(n.reallocate(e, 0));
    BOOST_TEST(!n.reallocate(e, 1));
    BOOST_TEST(n.logger().reallocations == 1u);
    BOOST_TEST(n.logger().refused == 1u);
    BOOST_TEST(n.logger().live_blocks == 0u);  // nothing to nothing leaves nothing live
}

// The new abilities pass through exactly when the inner allocator has them.
using ca::testing::Hooked;
template <class A>
constexpr bool same_new_abilities =
    ca::UsableSize<Proxy<A, CountingLogger>> == ca::UsableSize<A> &&
    ca::AllocatingZeroed<Proxy<A, CountingLogger>> == ca::AllocatingZeroed<A> &&
    ca::TryDeallocating<Proxy<A, CountingLogger>> == ca::TryDeallocating<A> &&
    ca::ForkAware<Proxy<A, CountingLogger>> == ca::ForkAware<A> &&
    ca::ThreadFlushing<Proxy<A, CountingLogger>> == ca::ThreadFlushing<A>;
static_assert(same_new_abilities<System> && same_new_abilities<List> && same_new_abilities<Null> &&
              same_new_abilities<Hooked<>> && same_new_abilities<ca::testing::HeapParent>);
static_assert(ca::UsableSize<Proxy<List, CountingLogger>> && ca::AllocatingZeroed<Proxy<System, CountingLogger>>);
static_assert(ca::ForkAware<Proxy<Hooked<>, CountingLogger>> && !ca::ForkAware<Proxy<System, CountingLogger>>);

namespace {
// A list that can say "mine" in one step, as Segregated does.
struct TryList : List {
    using List::List;
    bool try_deallocate(Block b) noexcept {
        if (!b.ptr || !owns(b.ptr)) return false;
        deallocate(b);
        return true;
    }
};
}  // namespace

BOOST_AUTO_TEST_CASE(new_abilities_are_forwarded_and_logged) {
    std::vector<Event> events;
    Proxy<TryList, RecordingLogger> p(TryList(64, 2), RecordingLogger{&events});
    static_assert(ca::TryDeallocating<decltype(p)> && ca::UsableSize<decltype(p)>);
    Block b = p.allocate(8, 16);
    BOOST_TEST(p.usable_size(b.ptr) == 64u);
    alignas(16) char foreign[64];
    BOOST_TEST(!p.try_deallocate(Block{foreign, sizeof foreign}));  // not its own: nothing heard
    BOOST_TEST(events.size() == 1u);
    BOOST_TEST(p.try_deallocate(b));
    BOOST_REQUIRE(events.size() == 2u);
    BOOST_TEST((events[1] == Event{Event::Deallocate, 0, 0, b, {}, true}));

    Proxy<System, CountingLogger> s;
    Block z = s.allocate_zeroed(100, 16);
    BOOST_REQUIRE(z);
    BOOST_TEST(static_cast<const unsigned char*>(z.ptr)[99] == 0);
    BOOST_TEST(s.logger().requests == 1u);
    BOOST_TEST(s.logger().live_bytes == z.size);
    s.deallocate(z);
    BOOST_TEST(s.logger().live_bytes == 0u);

    std::string trace;
    Proxy<Hooked<>, CountingLogger> h;
    h.inner().traced(trace, 'H');
    h.fork_prepare();
    h.fork_parent();
    h.fork_prepare();
    h.fork_child();
    h.flush_thread();
    BOOST_TEST(trace == "pHaHpHcHfH");
}

// Counters chosen at compile time: those not chosen take no room; the preload's set, with
// atomic words, counts the same as CountingLogger for what both have.
using PreloadCounts = ca::Counting<ca::counts::preload, std::atomic<std::int64_t>>;
using JustRequests = ca::Counting<ca::counts::requests>;
static_assert(sizeof(JustRequests) == sizeof(std::size_t));
static_assert(sizeof(ca::Counting<0>) == 1 && std::is_empty_v<ca::Counting<0>>);
static_assert(sizeof(PreloadCounts) == 7 * sizeof(std::int64_t));
static_assert(ca::ProxyLogger<PreloadCounts> && ca::ProxyLogger<JustRequests>);
template <class L>
concept CountsFrees = requires(L& l) { l.frees + 1; };
static_assert(CountsFrees<CountingLogger> && !CountsFrees<JustRequests>);

BOOST_AUTO_TEST_CASE(chosen_counters_agree_with_the_full_set) {
    Proxy<List, CountingLogger> full(List(64, 4));
    Proxy<List, PreloadCounts> preload(List(64, 4));
    Proxy<List, JustRequests> few(List(64, 4));
    auto run = [](auto& p) {
        Block a = p.allocate(10, 16), b = p.allocate(20, 16);
        BOOST_TEST(p.expand(a, 64));
        BOOST_TEST(!p.allocate(100, 16));
        p.deallocate(b);
        p.deallocate(a);
        Block c = p.allocate(1, 16);
        p.deallocate(c);
    };
    run(full);
    run(preload);
    run(few);
    const auto& f = full.logger();
    const auto& q = preload.logger();
    BOOST_TEST(f.requests == 4u);
    BOOST_TEST(few.logger().requests == f.requests);
    BOOST_TEST(q.requests.load() == static_cast<std::int64_t>(f.requests));
    BOOST_TEST(q.bytes.load() == static_cast<std::int64_t>(f.bytes));
    BOOST_TEST(q.refused.load() == static_cast<std::int64_t>(f.refused));
    BOOST_TEST(q.frees.load() == static_cast<std::int64_t>(f.frees));
    BOOST_TEST(q.live_bytes.load() == 0);
    BOOST_TEST(q.peak_bytes.load() == static_cast<std::int64_t>(f.peak_bytes));
    BOOST_TEST(f.peak_bytes == 2 * 64u);  // a reallocation gives back the old block first
}
