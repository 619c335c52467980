#define BOOST_TEST_MODULE segregated
#include <boost/test/unit_test.hpp>

#include <sys/mman.h>

#include <chainalloc/segregated.hpp>

#include "conformance.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

using chainalloc::Block;
using chainalloc::FreeNode;
using chainalloc::Segregated;
using chainalloc::SizeClasses;
using chainalloc::SpinLock;
using chainalloc::ForkGuard;
using chainalloc::testing::fill;
using chainalloc::testing::holds;
namespace ca = chainalloc;

static_assert(ca::BlockOwner<Segregated<>> && ca::Expanding<Segregated<>> &&
              ca::GoodSize<Segregated<>> && !ca::Reallocating<Segregated<>>);
static_assert(ca::BlockOwner<Segregated<SpinLock>>);

namespace {

template <class Lock = ca::NoLock>
std::unique_ptr<Segregated<Lock>> make(std::size_t max_bytes = 0,
                                       const SizeClasses& classes = SizeClasses::defaults()) {
    auto s = std::make_unique<Segregated<Lock>>();
    BOOST_REQUIRE(s->init(classes, max_bytes));
    return s;
}

SizeClasses table(std::vector<std::uint32_t> sizes) {
    SizeClasses t;
    BOOST_REQUIRE(t.assign(sizes));
    return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(init_once_and_only_with_classes) {
    Segregated<> s;
    BOOST_TEST(!s.ready());
    BOOST_TEST(!s.allocate(16, 16));  // uninitialised: fails, owns nothing
    int local;
    BOOST_TEST(!s.owns(&local));
    BOOST_TEST(!s.owns(nullptr));
    BOOST_TEST(s.init(SizeClasses::defaults()));
    BOOST_TEST(s.ready());
    BOOST_TEST(s.classes().count() == 40u);
    BOOST_TEST(s.mapped_bytes() == 0u);  // nothing is mapped before the first request
    BOOST_TEST(!s.init(SizeClasses::defaults()));  // already set up

    Segregated<> none;
    BOOST_TEST(!none.init(SizeClasses{}));
    BOOST_TEST(!none.ready());

    // A class larger than a segment gets a mapping per block, given back when it is freed.
    Segregated<> huge;
    BOOST_REQUIRE(huge.init(table({16, 32u << 20})));
    Block b = huge.allocate(20u << 20, 16);
    BOOST_REQUIRE(b);
    BOOST_TEST(b.size == (32u << 20));
    BOOST_TEST(huge.owns(b.ptr));
    fill(b.ptr, 4096, 7);
    fill(static_cast<char*>(b.ptr) + b.size - 4096, 4096, 7);
    BOOST_TEST(huge.usable_size(b.ptr) == (32u << 20));
    Block second = huge.allocate(32u << 20, 16);
    BOOST_REQUIRE(second);
    huge.deallocate(b);
    huge.deallocate(second);  // the class keeps one span; the other goes back to the system
    BOOST_TEST(huge.mapped_bytes() < (40u << 20));
}

BOOST_AUTO_TEST_CASE(blocks_have_their_class_size) {
    auto s = make();
    const SizeClasses& t = s->classes();
    for (std::size_t n : {0u, 1u, 16u, 17u, 128u, 129u, 4096u, 4097u, 32768u}) {
        Block b = s->allocate(n, 16);
        BOOST_REQUIRE(b);
        BOOST_TEST(b.size == t.size_of(t.class_of(n)));
        BOOST_TEST(b.size >= n);
        fill(b.ptr, b.size, static_cast<unsigned>(n));
        BOOST_TEST(holds(b.ptr, b.size, static_cast<unsigned>(n)));
        s->deallocate(b);
    }
    BOOST_TEST((s->allocate(32769, 16) == Block{}));
    BOOST_TEST((s->allocate(SIZE_MAX, 16) == Block{}));
}

// For every alignment a class can honour, every block (not just the first) is aligned; where
// no class size is a multiple of the alignment, the request fails cleanly.
BOOST_AUTO_TEST_CASE(alignment_where_a_class_allows_it) {
    auto s = make();
    const SizeClasses& t = s->classes();
    for (std::size_t align = 1; align <= 65536; align *= 2)
        for (std::size_t n : {1u, 100u, 1000u, 5000u, 20000u}) {
            BOOST_TEST_CONTEXT("n " << n << " align " << align) {
                int c = t.class_of(n, align);
                std::vector<Block> blocks;
                for (int i = 0; i < 5; ++i) {
                    Block b = s->allocate(n, align);
                    if (c == SizeClasses::kNone) {
                        BOOST_TEST((b == Block{}));
                        continue;
                    }
                    BOOST_REQUIRE(b);
                    BOOST_TEST(ca::is_aligned(b.ptr, align));
                    BOOST_TEST(b.size >= n);
                    BOOST_TEST(b.size % align == 0u);
                    blocks.push_back(b);
                }
                for (Block b : blocks) s->deallocate(b);
            }
        }
    BOOST_TEST(t.class_of(1, 4096) != SizeClasses::kNone);  // 4096 is servable by default
    BOOST_TEST((s->allocate(1, 65536) == Block{}));         // but nothing that large
}

BOOST_AUTO_TEST_CASE(alignment_fails_where_no_class_allows_it) {
    auto s = make(0, table({48, 80, 112}));
    Block b = s->allocate(1, 16);
    BOOST_TEST(static_cast<bool>(b));
    BOOST_TEST(b.size == 48u);
    s->deallocate(b);
    BOOST_TEST((s->allocate(1, 32) == Block{}));  // 48, 80, 112 are not multiples of 32
    BOOST_TEST((s->allocate(1, 4096) == Block{}));
}

BOOST_AUTO_TEST_CASE(owns_by_address_only) {
    Segregated<> s;
    BOOST_REQUIRE(s.init(SizeClasses::defaults()));
    std::vector<Block> blocks;
    for (std::size_t n = 16; n <= 32768; n *= 2) blocks.push_back(s.allocate(n, 16));
    for (Block b : blocks) {
        BOOST_REQUIRE(b);
        BOOST_TEST(s.owns(b.ptr));
        BOOST_TEST(s.owns(static_cast<char*>(b.ptr) + b.size - 1));
    }
    int local = 0;
    auto heap = std::make_unique<int>(0);
    BOOST_TEST(!s.owns(&local));
    BOOST_TEST(!ca::testing::owns_own_stack_address(s));
    BOOST_TEST(!s.owns(heap.get()));
    BOOST_TEST(!s.owns(nullptr));
    BOOST_TEST(!s.owns(reinterpret_cast<void*>(UINTPTR_MAX)));
    BOOST_TEST(!s.owns(reinterpret_cast<void*>(std::uintptr_t{1} << 47)));
    // Another layer's memory is not this one's, though both live in mapped segments.
    Segregated<> other;
    BOOST_REQUIRE(other.init(SizeClasses::defaults()));
    Block theirs = other.allocate(64, 16);
    BOOST_TEST(other.owns(theirs.ptr));
    BOOST_TEST(!s.owns(theirs.ptr));
    other.deallocate(theirs);
    for (Block b : blocks) s.deallocate(b);
}

BOOST_AUTO_TEST_CASE(class_of_pointer_and_usable_size) {
    auto s = make();
    const SizeClasses& t = s->classes();
    for (std::size_t c = 0; c < t.count(); ++c) {
        Block b = s->allocate(t.size_of(c), 16);
        BOOST_REQUIRE(b);
        BOOST_TEST(s->class_of_pointer(b.ptr) == c);
        BOOST_TEST(s->class_of_pointer(static_cast<char*>(b.ptr) + b.size - 1) == c);
        BOOST_TEST(s->usable_size(b.ptr) == t.size_of(c));
        BOOST_TEST(s->good_size(t.size_of(c)) == t.size_of(c));
        BOOST_TEST(s->good_size(t.size_of(c) - 1) == t.size_of(c));
        s->deallocate(b);
    }
    BOOST_TEST(s->good_size(32769) == 0u);
}

BOOST_AUTO_TEST_CASE(reuse_is_lifo_and_per_class) {
    auto s = make();
    Block a = s->allocate(64, 16), b = s->allocate(64, 16), c = s->allocate(64, 16);
    s->deallocate(a);
    s->deallocate(c);
    s->deallocate(b);
    const std::size_t carved = s->carved_bytes();
    BOOST_TEST(s->allocate(64, 16).ptr == b.ptr);
    BOOST_TEST(s->allocate(50, 16).ptr == c.ptr);  // same class (64)
    Block other = s->allocate(128, 16);            // another class: its own list
    BOOST_TEST(other.ptr != a.ptr);
    BOOST_TEST(s->allocate(64, 16).ptr == a.ptr);
    BOOST_TEST(s->carved_bytes() == carved + 128);  // only the 128 was new
}

BOOST_AUTO_TEST_CASE(carved_bytes_count_fresh_blocks) {
    auto s = make();
    const SizeClasses& t = s->classes();
    BOOST_TEST(s->carved_bytes() == 0u);
    std::vector<Block> blocks;
    for (int i = 0; i < 10; ++i) blocks.push_back(s->allocate(100, 16));  // class 112
    const int c = t.class_of(100);
    BOOST_TEST(s->carved_bytes(c) == 10 * 112u);
    BOOST_TEST(s->carved_bytes() == 10 * 112u);
    for (Block b : blocks) s->deallocate(b);
    BOOST_TEST(s->carved_bytes() == 10 * 112u);  // freed blocks stay carved
    for (int i = 0; i < 10; ++i) s->allocate(100, 16);
    BOOST_TEST(s->carved_bytes() == 10 * 112u);  // and are reused before carving more
}

BOOST_AUTO_TEST_CASE(max_bytes_cap_is_exact) {
    auto s = make(64 * 1024);
    std::vector<Block> blocks;
    while (Block b = s->allocate(64, 16)) blocks.push_back(b);
    BOOST_TEST(blocks.size() == 1024u);  // 1024 * 64 == the cap, not one more
    BOOST_TEST(s->out_bytes() == 64 * 1024u);
    BOOST_TEST(s->carved_bytes() == 64 * 1024u);
    BOOST_TEST((s->allocate(16, 16) == Block{}));  // every class is capped together
    BOOST_TEST((s->allocate(64, 16) == Block{}));
    BOOST_TEST(s->out_bytes() == 64 * 1024u);  // failures take nothing
    // Frees make room again, first from the class's own list.
    for (int i = 0; i < 10; ++i) s->deallocate(blocks[i]);
    BOOST_TEST(s->out_bytes() == (1024 - 10) * 64u);
    int again = 0;
    while (Block b = s->allocate(64, 16)) {
        blocks[again] = b;
        ++again;
    }
    BOOST_TEST(again == 10);
    BOOST_TEST(s->carved_bytes() == 64 * 1024u);  // reused, not carved
    // What the cap counts is what is out: freed blocks of one class leave room for another,
    // even though they stay reserved for their own.
    for (Block b : blocks) s->deallocate(b);
    BOOST_TEST(s->out_bytes() == 0u);
    int big = 0;
    while (s->allocate(128, 16)) ++big;
    BOOST_TEST(big == 512);
    BOOST_TEST(s->out_bytes() == 64 * 1024u);
    BOOST_TEST(s->carved_bytes() == 128 * 1024u);
}

BOOST_AUTO_TEST_CASE(max_bytes_cap_not_a_multiple) {
    auto s = make(1000);
    int n = 0;
    while (s->allocate(64, 16)) ++n;
    BOOST_TEST(n == 15);  // 960; a 16th would make 1024 > 1000
    BOOST_TEST(static_cast<bool>(s->allocate(32, 16)));  // 992 still fits
    BOOST_TEST(!s->allocate(16, 16));                    // 1008 does not
    BOOST_TEST(s->carved_bytes() == 992u);
    BOOST_TEST(s->out_bytes() == 992u);
}

// Every class's spans hold whole blocks: none crosses into the next slice run or segment,
// and the last one of a span is writable to its end.
BOOST_AUTO_TEST_CASE(spans_hold_whole_blocks) {
    auto s = make();
    const SizeClasses& t = s->classes();
    for (std::size_t c = 0; c < t.count(); ++c) {
        const std::size_t size = t.size_of(c);
        std::vector<Block> blocks;
        for (std::size_t bytes = 0; bytes < (std::size_t{3} << 20); bytes += size) {
            Block b = s->allocate(size, 16);
            BOOST_REQUIRE(b);
            blocks.push_back(b);
        }
        for (Block b : blocks) {
            auto p = reinterpret_cast<std::uintptr_t>(b.ptr);
            const ca::Slice* slice = s->slice_of(b.ptr);
            const ca::Slice* last = s->slice_of(reinterpret_cast<void*>(p + size - 1));
            BOOST_TEST(slice->start == last->start);  // one span
            BOOST_TEST(p >> ca::kSegmentShift == (p + size - 1) >> ca::kSegmentShift);
            BOOST_TEST(slice->is_block_start(b.ptr));
            BOOST_TEST(last->is_block_start(b.ptr));
            if (size > 16) BOOST_TEST(!slice->is_block_start(reinterpret_cast<void*>(p + 16)));
            BOOST_TEST(!slice->is_block_start(reinterpret_cast<void*>(p + 8)));
        }
        fill(blocks.back().ptr, size, 3);
        BOOST_TEST(holds(blocks.back().ptr, size, 3));
        for (Block b : blocks) s->deallocate(b);
    }
}

BOOST_AUTO_TEST_CASE(expand_within_the_class) {
    auto s = make();
    Block b = s->allocate(100, 16);  // class 112
    BOOST_REQUIRE(b);
    b.size = 100;
    BOOST_TEST(s->expand(b, 112));
    BOOST_TEST(b.size == 112u);
    const Block before = b;
    BOOST_TEST(!s->expand(b, 113));
    BOOST_TEST((b == before));
    Block empty;
    BOOST_TEST(!s->expand(empty, 16));  // nothing to grow
    BOOST_TEST((empty == Block{}));
    s->deallocate(b);
}

BOOST_AUTO_TEST_CASE(reallocate_moves_between_classes) {
    auto s = make();
    Block b = s->allocate(40, 16);
    BOOST_REQUIRE(b);
    fill(b.ptr, 40, 5);
    void* p = b.ptr;
    BOOST_TEST(ca::reallocate(*s, b, 48));  // same class: in place
    BOOST_TEST(b.ptr == p);
    BOOST_TEST(ca::reallocate(*s, b, 3000));
    BOOST_TEST(b.ptr != p);
    BOOST_TEST(s->class_of_pointer(b.ptr) == std::size_t(s->classes().class_of(3000)));
    BOOST_TEST(holds(b.ptr, 40, 5));
    BOOST_TEST(s->allocate(48, 16).ptr == p);  // the old block went back to its list
    fill(b.ptr, 3000, 6);
    BOOST_TEST(ca::reallocate(*s, b, 20));  // shrinking keeps the class (in place)
    BOOST_TEST(holds(b.ptr, 20, 6));
    Block empty;
    BOOST_TEST(ca::reallocate(*s, empty, 64));  // an empty block gets a fresh one
    BOOST_TEST(s->owns(empty.ptr));
    BOOST_TEST(!ca::reallocate(*s, b, 40000));  // too large: clean failure
    BOOST_TEST(holds(b.ptr, 20, 6));
}

BOOST_AUTO_TEST_CASE(take_and_give_batches) {
    auto s = make();
    const std::size_t c = s->classes().class_of(256);
    FreeNode* head = nullptr;
    BOOST_TEST(s->take(c, 10, head) == 10u);
    BOOST_TEST(s->carved_bytes(c) == 10 * 256u);
    std::set<FreeNode*> got;
    for (FreeNode* n = head; n; n = chainalloc::next_of(n)) {
        BOOST_TEST(s->class_of_pointer(n) == c);
        got.insert(n);
    }
    BOOST_TEST(got.size() == 10u);
    s->give(c, head, 10);
    // Free blocks come first: no carving for a batch the list can cover...
    FreeNode* again = nullptr;
    BOOST_TEST(s->take(c, 4, again) == 4u);
    BOOST_TEST(s->carved_bytes(c) == 10 * 256u);
    std::size_t n = 0;
    for (FreeNode* x = again; x; x = chainalloc::next_of(x), ++n) BOOST_TEST(got.count(x) == 1u);
    BOOST_TEST(n == 4u);
    // ...and the rest of a larger one is carved fresh.
    FreeNode* more = nullptr;
    BOOST_TEST(s->take(c, 20, more) == 20u);
    BOOST_TEST(s->carved_bytes(c) == 24 * 256u);
    std::set<FreeNode*> all;
    for (FreeNode* x = more; x; x = chainalloc::next_of(x)) all.insert(x);
    for (FreeNode* x = again; x; x = chainalloc::next_of(x)) all.insert(x);
    BOOST_TEST(all.size() == 24u);  // no block handed out twice
    // A single block given back alone is found by allocate.
    s->give(c, again, 1);
    BOOST_TEST(s->allocate(256, 16).ptr == again);
}

// take and give move blocks between the layer and a cache: the cap counts neither (what the
// cache hands to the program is charged there).
BOOST_AUTO_TEST_CASE(take_and_give_are_not_charged) {
    auto s = make(10 * 256);
    const std::size_t c = s->classes().class_of(256);
    FreeNode* head = nullptr;
    BOOST_TEST(s->take(c, 16, head) == 16u);
    BOOST_TEST(s->out_bytes() == 0u);
    BOOST_TEST(s->charge(10 * 256));
    BOOST_TEST(!s->charge(1));  // at the cap
    BOOST_TEST((s->allocate(16, 16) == Block{}));
    s->refund(10 * 256);
    s->give(c, head, 16);
    BOOST_TEST(s->out_bytes() == 0u);
}

// A capped layer serves every size: past its largest class, a block of whole 64 KiB slices
// in a mapping of its own, counted against the cap and unmapped when freed.
BOOST_AUTO_TEST_CASE(capped_layer_serves_large_blocks) {
    auto s = make(64u << 20);
    const std::size_t mapped = s->mapped_bytes();
    Block a = s->allocate(1u << 20, 16);
    Block b = s->allocate((16u << 20) + 1, 4096);
    BOOST_REQUIRE(a);
    BOOST_REQUIRE(b);
    BOOST_TEST(a.size == (1u << 20));
    BOOST_TEST(b.size == (16u << 20) + 65536);
    BOOST_TEST(ca::is_aligned(b.ptr, 4096));
    BOOST_TEST(s->owns(a.ptr));
    BOOST_TEST(s->usable_size(b.ptr) == b.size);
    // The whole 4 MiB region of a large block's mapping is the layer's: a mapping another
    // part of the process asks for right after the block never lands there and passes for ours.
    void* near = mmap(static_cast<char*>(a.ptr) + (2u << 20), 65536, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    BOOST_REQUIRE(near != MAP_FAILED);
    BOOST_TEST(!s->owns(near));
    munmap(near, 65536);
    fill(b.ptr, b.size, 9);
    BOOST_TEST(holds(b.ptr, b.size, 9));
    BOOST_TEST(s->out_bytes() == a.size + b.size);
    BOOST_TEST(s->large_bytes() == a.size + b.size);
    BOOST_TEST((s->allocate(48u << 20, 16) == Block{}));  // would pass 64 MiB
    BOOST_TEST((s->allocate(1, 1u << 17) == Block{}));    // large blocks align to 64 KiB at most
    s->deallocate(b);
    Block c = s->allocate(48u << 20, 16);  // fits now
    BOOST_REQUIRE(c);
    s->deallocate(a);
    s->deallocate(c);
    BOOST_TEST(s->out_bytes() == 0u);
    BOOST_TEST(s->mapped_bytes() == mapped);  // every large block's mapping is gone
    // Without a cap the layer keeps to its classes, and larger requests fall through.
    auto uncapped = make();
    BOOST_TEST((uncapped->allocate(1u << 20, 16) == Block{}));
}

BOOST_AUTO_TEST_CASE(fork_prepare_blocks_other_threads) {
    auto s = make<SpinLock>();
    s->fork_prepare();
    std::atomic<bool> done{false};
    Block got;
    std::thread t([&] {
        got = s->allocate(64, 16);
        done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    BOOST_TEST(!done.load());  // waiting on the class's lock
    s->fork_parent();
    t.join();
    BOOST_TEST(done.load());
    BOOST_TEST(s->owns(got.ptr));
    s->deallocate(got);
}

// A signal handler that forks may interrupt this thread while it holds a class's lock:
// fork_prepare must not wait for it (it never comes back), and the parent must leave it held
// (the interrupted code still owns it), while the child releases it.
BOOST_AUTO_TEST_CASE(fork_prepare_skips_a_lock_the_caller_holds) {
    SpinLock lock;
    ForkGuard<SpinLock> guard;
    lock.lock();
    BOOST_TEST(lock.held_by_caller());
    guard.prepare(lock);  // would spin forever if it waited
    guard.parent(lock);
    BOOST_TEST(lock.held_by_caller());  // still the interrupted owner's
    guard.prepare(lock);
    guard.child(lock);
    BOOST_TEST(!lock.held_by_caller());
    std::thread([&] { BOOST_TEST(!lock.held_by_caller()); lock.lock(); lock.unlock(); }).join();
}

// Four threads share the same classes through the locked central lists; each block's contents
// are checked before it goes back, so two threads holding one block would show.
BOOST_AUTO_TEST_CASE(threads_share_classes) {
    auto s = make<SpinLock>();
    constexpr int kThreads = 4, kRounds = 20000, kLive = 64;
    const std::size_t sizes[] = {16, 48, 64, 256, 1000};
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            std::mt19937 rng(t);
            struct Live {
                Block b;
                unsigned seed;
            };
            std::vector<Live> live;
            for (int i = 0; i < kRounds; ++i) {
                if (live.size() < kLive && (live.empty() || rng() % 2)) {
                    std::size_t n = sizes[rng() % 5];
                    Block b = s->allocate(n, 16);
                    if (!b || !s->owns(b.ptr)) {
                        ++bad;
                        continue;
                    }
                    unsigned seed = t * 1000003u + i;
                    fill(b.ptr, n, seed);
                    live.push_back({Block{b.ptr, n}, seed});
                } else {
                    std::size_t k = rng() % live.size();
                    if (!holds(live[k].b.ptr, live[k].b.size, live[k].seed)) ++bad;
                    s->deallocate(live[k].b);
                    live[k] = live.back();
                    live.pop_back();
                }
            }
            for (Live& l : live) {
                if (!holds(l.b.ptr, l.b.size, l.seed)) ++bad;
                s->deallocate(l.b);
            }
        });
    for (auto& th : threads) th.join();
    BOOST_TEST(bad.load() == 0);
    // Everything came back: at most kThreads * kLive blocks of each class were ever needed.
    std::size_t bound = 0;
    for (std::size_t n : sizes) bound += kThreads * kLive * s->good_size(n);
    BOOST_TEST(s->carved_bytes() <= bound);
    // And every carved block is on a free list: taking them all back carves nothing new.
    const std::size_t carved = s->carved_bytes();
    for (std::size_t n : sizes) {
        const std::size_t c = s->classes().class_of(n);
        const auto blocks = static_cast<std::uint32_t>(s->carved_bytes(c) / s->classes().size_of(c));
        FreeNode* head = nullptr;
        BOOST_TEST(s->take(c, blocks, head) == blocks);
    }
    BOOST_TEST(s->carved_bytes() == carved);
}

static_assert(chainalloc::UsableSize<Segregated<>> && chainalloc::TryDeallocating<Segregated<>> &&
              chainalloc::ForkAware<Segregated<SpinLock>> && !chainalloc::AllocatingZeroed<Segregated<>> &&
              !chainalloc::ThreadFlushing<Segregated<>>);

BOOST_AUTO_TEST_CASE(try_deallocate_by_range) {
    auto s = make();
    Block b = s->allocate(100, 16);
    BOOST_REQUIRE(b);
    alignas(16) char foreign[64];
    BOOST_TEST(!s->try_deallocate(Block{foreign, sizeof foreign}));
    BOOST_TEST(!s->try_deallocate(Block{}));
    BOOST_TEST(s->try_deallocate(b));
    Block again = s->allocate(100, 16);
    BOOST_TEST(again.ptr == b.ptr);  // back on its class's list
    s->deallocate(again);
}
