#define BOOST_TEST_MODULE layer_chain
#include <boost/test/unit_test.hpp>

// The preload's chain is a LayerChain of erased blocks (docs/DESIGN.md §4.1); these are the
// same types it runs: CachedSegregated (here with ThreadCached's thread_local caches, where the
// preload keeps them in its one TLS object), System, Null, and an observer standing for the
// preload's proxy.
#include <chainalloc/layer_chain.hpp>
#include <chainalloc/null.hpp>
#include <chainalloc/system.hpp>
#include <chainalloc/thread_cached.hpp>

#include <cstring>
#include <memory>
#include <vector>

namespace ca = chainalloc;
using ca::Block;
using ca::Erased;
using ca::SizeClasses;

namespace {
struct Tag {};
using Freelist = ca::ThreadCached<Tag>;
using Chain = ca::LayerChain<8>;

// One ThreadCached object per Tag at a time (thread_cached.hpp): each test flushes this
// thread's cache before its freelist goes.
std::unique_ptr<Freelist> make_freelist(std::size_t max_bytes = 0, const SizeClasses& classes = SizeClasses::defaults()) {
    auto f = std::make_unique<Freelist>();
    BOOST_REQUIRE(f->init(classes, ca::CacheLimits{64, 64 * 256}, max_bytes));
    return f;
}

// Counts what a chain tells its observer.
struct Seen {
    std::vector<unsigned> served, fell_through, failed, freed;
};
struct Recorder {
    Seen* seen;
    void on_served(unsigned i, Block) noexcept { seen->served.push_back(i); }
    void on_fell_through(unsigned i) noexcept { seen->fell_through.push_back(i); }
    void on_failed(unsigned i) noexcept { seen->failed.push_back(i); }
    void on_freed(unsigned i, const void*, std::size_t) noexcept { seen->freed.push_back(i); }
};

// Watches the rest of the chain, as the preload's proxy does.
struct Watcher {
    static constexpr bool kObserver = true;
    static constexpr std::size_t alignment = ca::kMinAlign;
    Chain* chain = nullptr;
    unsigned index = 0;
    unsigned requests = 0, last_by = 0;

    Block allocate(std::size_t n, std::size_t align, bool zero, unsigned& by) noexcept {
        auto served = chain->allocate(index + 1, n, align, zero);
        ++requests;
        by = last_by = served.by;
        return served.block;
    }
    Block allocate(std::size_t n, std::size_t align) noexcept {
        unsigned by = 0;
        return allocate(n, align, false, by);
    }
    void deallocate(Block) noexcept {}
};
}  // namespace

// The tables offer what each block has, and nothing it lacks (allocator.hpp's rule).
BOOST_AUTO_TEST_CASE(tables_follow_the_abilities) {
    const ca::ErasedOps& freelist = ca::kErasedOps<Freelist>;
    BOOST_TEST((freelist.owns && freelist.usable_size && freelist.fits_in_place && freelist.refusal_is_final));
    BOOST_TEST((freelist.fork_prepare && freelist.fork_parent && freelist.fork_child && freelist.flush_thread && freelist.trim));
    BOOST_TEST(!freelist.reallocate);  // it resizes by class: fits_in_place, or a new block
    BOOST_TEST(!freelist.observer);

    const ca::ErasedOps& system = ca::kErasedOps<ca::System>;
    BOOST_TEST(!system.owns);  // it cannot tell its pointers from others
    BOOST_TEST((system.usable_size && system.reallocate));
    BOOST_TEST((!system.fits_in_place && !system.refusal_is_final && !system.fork_prepare && !system.flush_thread && !system.trim));

    const ca::ErasedOps& null = ca::kErasedOps<ca::Null>;
    BOOST_TEST(static_cast<bool>(null.owns));
    BOOST_TEST(!null.usable_size);
    BOOST_TEST(ca::kErasedOps<Watcher>.observer);
}

// freelist > system: small requests are the freelist's, the rest falls through to glibc, and
// ownership routes each pointer back to the layer that made it.
BOOST_AUTO_TEST_CASE(a_freelist_then_glibc) {
    auto fl = make_freelist();
    ca::System glibc;
    Chain chain;
    BOOST_REQUIRE(chain.add(Erased::of(*fl)));
    BOOST_REQUIRE(chain.add(Erased::of(glibc)));
    Seen seen;

    auto small = chain.allocate(0, 100, 16, false, true, Recorder{&seen});
    BOOST_REQUIRE(small.block);
    BOOST_TEST(small.by == 0u);
    BOOST_TEST(small.block.size == 112u);
    BOOST_TEST(chain.owner_of(small.block.ptr) == 0u);

    auto large = chain.allocate(0, 100000, 16, true, true, Recorder{&seen});
    BOOST_REQUIRE(large.block);
    BOOST_TEST(large.by == 1u);
    BOOST_TEST(chain.owner_of(large.block.ptr) == chain.none());  // glibc's: the caller's to route
    const auto* bytes = static_cast<const unsigned char*>(large.block.ptr);
    BOOST_TEST((bytes[0] == 0 && bytes[99999] == 0));
    BOOST_TEST((seen.served == std::vector<unsigned>{0, 1}));
    BOOST_TEST((seen.fell_through == std::vector<unsigned>{0}));
    BOOST_TEST(seen.failed.empty());

    const Erased& first = chain[0];
    BOOST_TEST(first.ops->fits_in_place(first.self, small.block.ptr, 110));
    BOOST_TEST(!first.ops->fits_in_place(first.self, small.block.ptr, 300));
    BOOST_TEST(first.ops->usable_size(first.self, small.block.ptr) == 112u);
    void* grown = chain[1].ops->reallocate(chain[1].self, large.block.ptr, 300000);
    BOOST_REQUIRE(grown);
    first.ops->deallocate(first.self, small.block.ptr);
    chain[1].ops->deallocate(chain[1].self, grown);
    BOOST_TEST(fl->cached_blocks() > 0u);
    chain.flush_thread();
    BOOST_TEST(fl->cached_blocks() == 0u);
}

// A capped freelist's refusal is final: the request fails there, even with a layer behind it
// that would serve it, so nothing escapes the cap.
BOOST_AUTO_TEST_CASE(a_capped_refusal_does_not_fall_through) {
    auto fl = make_freelist(1 << 20);
    ca::System glibc;
    Chain chain;
    chain.add(Erased::of(*fl));
    chain.add(Erased::of(glibc));
    Seen seen;
    auto big = chain.allocate(0, 2 << 20, 16, false, true, Recorder{&seen});
    BOOST_TEST(!big.block);
    BOOST_TEST(big.by == chain.none());
    BOOST_TEST((seen.failed == std::vector<unsigned>{0}));
    BOOST_TEST(seen.fell_through.empty());
    auto fits = chain.allocate(0, 512 << 10, 16, false);  // a large block the layer serves
    BOOST_REQUIRE(fits.block);
    BOOST_TEST(fits.by == 0u);
    chain[0].ops->deallocate(chain[0].self, fits.block.ptr);
    chain.flush_thread();
}

// `null` at the end: a request no layer serves fails at the terminal.
BOOST_AUTO_TEST_CASE(null_ends_a_chain) {
    SizeClasses tiny;
    const std::uint32_t sizes[] = {16, 32};
    BOOST_REQUIRE(tiny.assign(sizes));
    auto fl = make_freelist(0, tiny);
    ca::Null null;
    Chain chain;
    chain.add(Erased::of(*fl));
    chain.add(Erased::of(null));
    Seen seen;
    auto r = chain.allocate(0, 64, 16, false, true, Recorder{&seen});
    BOOST_TEST(!r.block);
    BOOST_TEST((seen.fell_through == std::vector<unsigned>{0}));
    BOOST_TEST((seen.failed == std::vector<unsigned>{1}));
    BOOST_TEST(chain.owner_of(&seen) == chain.none());
    chain.flush_thread();
}

// An observer serves through the rest of the chain and reports who did; an unobserved request
// (realloc's inner one in the preload) passes it by.
BOOST_AUTO_TEST_CASE(observers_watch_the_rest) {
    auto fl = make_freelist();
    ca::System glibc;
    Watcher watcher;
    Chain chain;
    chain.add(Erased::of(watcher));
    chain.add(Erased::of(*fl));
    chain.add(Erased::of(glibc));
    watcher.chain = &chain;
    watcher.index = 0;

    auto a = chain.allocate(0, 48, 16, false);
    BOOST_REQUIRE(a.block);
    BOOST_TEST(a.by == 1u);
    BOOST_TEST(watcher.requests == 1u);
    BOOST_TEST(watcher.last_by == 1u);
    auto b = chain.allocate(0, 1 << 20, 16, false);
    BOOST_TEST(b.by == 2u);
    BOOST_TEST(watcher.requests == 2u);
    auto c = chain.allocate(0, 48, 16, false, false);
    BOOST_TEST(c.by == 1u);
    BOOST_TEST(watcher.requests == 2u);  // passed by
    BOOST_TEST(chain.owner_of(a.block.ptr) == 1u);  // the watcher owns nothing
    chain[1].ops->deallocate(chain[1].self, a.block.ptr);
    chain[1].ops->deallocate(chain[1].self, c.block.ptr);
    chain[2].ops->deallocate(chain[2].self, b.block.ptr);
    chain.flush_thread();
}

// The hooks reach every layer that has them; fork's in lock order.
BOOST_AUTO_TEST_CASE(hooks_reach_the_layers) {
    auto fl = make_freelist();
    ca::System glibc;
    Chain chain;
    chain.add(Erased::of(*fl));
    chain.add(Erased::of(glibc));
    chain.fork_prepare();
    chain.fork_parent();  // the locks are free again: a request goes through
    auto r = chain.allocate(0, 64, 16, false);
    BOOST_REQUIRE(r.block);
    chain.fork_prepare();
    chain.fork_child();
    chain[0].ops->deallocate(chain[0].self, r.block.ptr);
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i) blocks.push_back(chain.allocate(0, 256, 16, false).block.ptr);
    for (void* p : blocks) chain[0].ops->deallocate(chain[0].self, p);
    BOOST_TEST(chain.trim());  // the thread's cache and the freed spans went back
    BOOST_TEST(fl->cached_blocks() == 0u);
}

// realloc across the chain: in place within a class, by the owner itself where it can (glibc),
// else moved to wherever the chain serves the new size, contents kept, the old block given
// back; the observer sees the block freed and the new one served.
BOOST_AUTO_TEST_CASE(reallocate_follows_the_owner) {
    auto fl = make_freelist();
    ca::System glibc;
    Chain chain;
    chain.add(Erased::of(*fl));
    chain.add(Erased::of(glibc));
    Seen trace;

    auto a = chain.allocate(0, 100, 16, false);
    std::memset(a.block.ptr, 0x5a, 100);
    auto same = chain.reallocate(chain[0], 0, a.block.ptr, 110, Recorder{&trace});  // 112-byte class
    BOOST_TEST(same.block.ptr == a.block.ptr);
    BOOST_TEST(same.by == 0u);
    BOOST_TEST((trace.served.empty() && trace.freed.empty()));

    auto moved = chain.reallocate(chain[0], 0, a.block.ptr, 1000, Recorder{&trace});  // another class
    BOOST_REQUIRE(moved.block);
    BOOST_TEST(moved.by == 0u);
    BOOST_TEST(moved.block.ptr != a.block.ptr);
    const auto* bytes = static_cast<const unsigned char*>(moved.block.ptr);
    BOOST_TEST((bytes[0] == 0x5a && bytes[99] == 0x5a));
    BOOST_TEST((trace.served == std::vector<unsigned>{0} && trace.freed == std::vector<unsigned>{0}));

    auto out = chain.reallocate(chain[0], 0, moved.block.ptr, 100000, Recorder{&trace});  // past the classes: glibc
    BOOST_REQUIRE(out.block);
    BOOST_TEST(out.by == 1u);
    BOOST_TEST(static_cast<const unsigned char*>(out.block.ptr)[99] == 0x5a);
    BOOST_TEST(chain.owner_of(out.block.ptr) == chain.none());

    auto grown = chain.reallocate(chain[1], 1, out.block.ptr, 400000, Recorder{&trace});  // glibc's realloc
    BOOST_REQUIRE(grown.block);
    BOOST_TEST(grown.by == 1u);
    BOOST_TEST(static_cast<const unsigned char*>(grown.block.ptr)[99] == 0x5a);
    BOOST_TEST((trace.freed == std::vector<unsigned>{0, 0, 1}));
    chain[1].ops->deallocate(chain[1].self, grown.block.ptr);
    chain.flush_thread();
}
