#define BOOST_TEST_MODULE scoped
#ifndef CHAINALLOC_COMPILE_FAIL  // the compile-time checks below need no framework
#include <boost/test/unit_test.hpp>
#endif

#include <chainalloc/null.hpp>
#include <chainalloc/scoped.hpp>

#include "checking_allocator.hpp"

#include <array>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using chainalloc::Block;
using chainalloc::Scoped;
using chainalloc::ScopedHandle;

// Compile-time rejection of escapes, kept out of the normal build. Compiling this file with
// -DCHAINALLOC_COMPILE_FAIL=N (N = 1..5) must fail with the diagnostic named at each case; N = 0
// is the same code done right and must compile (a control, so that a broken command line
// cannot pass for an expected failure). By hand:
//   g++ -std=c++20 -fsyntax-only -Isrc -Itests -DCHAINALLOC_COMPILE_FAIL=1 tests/test_scoped.cpp
// (a meson `should_fail` test can run the same command for each N).
#ifdef CHAINALLOC_COMPILE_FAIL
void compile_check() {
    Scoped<> a(256);
#if CHAINALLOC_COMPILE_FAIL == 0
    int r = *a.scope([](auto& in) { return *in.template make<int>(1); });
    auto h = a.make<int>(1);
    auto moved = std::move(h);
    a.scope([](auto& in) {
        std::vector<ScopedHandle<int>> v;
        v.push_back(in.template make<int>(1));
    });
    (void)r;
#elif CHAINALLOC_COMPILE_FAIL == 1  // static_assert: "the function returns a ScopedHandle"
    a.scope([](auto& in) { return in.template make<int>(1); });
#elif CHAINALLOC_COMPILE_FAIL == 2  // the same static_assert: "(or a type holding one)"
    a.scope([](auto& in) {
        std::vector<ScopedHandle<int>> v;
        v.push_back(in.template make<int>(1));
        return v;
    });
#elif CHAINALLOC_COMPILE_FAIL == 3  // use of deleted default constructor and move assignment
    ScopedHandle<int> outer;
    a.scope([&](auto& in) { outer = in.template make<int>(1); });
#elif CHAINALLOC_COMPILE_FAIL == 4  // use of deleted copy constructor
    auto h = a.make<int>(1);
    auto copy = h;
#elif CHAINALLOC_COMPILE_FAIL == 5  // use of deleted operator new
    auto* p = new ScopedHandle<int>(a.make<int>(1));
    (void)p;
#endif
}
#else  // the tests

namespace {

// Destructors append here, so tests can see which ran and in what order.
std::vector<int> booms;

// The seed's Bomb: one byte, so a hundred fit in a kilobyte with their destructor record.
struct Bomb {
    std::uint8_t id;
    explicit Bomb(std::uint8_t i) : id(i) {}
    ~Bomb() { booms.push_back(id); }
};

struct Tracked {
    int id;
    explicit Tracked(int i) : id(i) {}
    ~Tracked() { booms.push_back(id); }
};

struct alignas(64) Wide {
    char bytes[64];
    ~Wide() { booms.push_back(-64); }
};

struct ThrowsOnBuild {
    explicit ThrowsOnBuild(int) { throw std::runtime_error("no"); }
    ~ThrowsOnBuild() { booms.push_back(-1); }
};

struct Fixture {
    Fixture() { booms.clear(); }
};

std::vector<int> countdown(int from, int to) {  // from, from-1, ..., to
    std::vector<int> v;
    for (int i = from; i >= to; --i) v.push_back(i);
    return v;
}

// Runs body in a forked child with stderr captured; tells whether the child died by SIGABRT
// and what it printed. The death-test pattern, without a framework.
struct ChildResult {
    bool aborted = false;
    std::string err;
};

template <class F>
ChildResult run_in_child(F body) {
    int fds[2];
    BOOST_REQUIRE(pipe(fds) == 0);
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        rlimit no_core{0, 0};
        setrlimit(RLIMIT_CORE, &no_core);  // an expected abort should not write a core file
        std::signal(SIGABRT, SIG_DFL);     // Boost.Test's handler would catch it and go on
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        body();
        _exit(0);
    }
    close(fds[1]);
    ChildResult r;
    char buf[512];
    ssize_t got;
    while ((got = read(fds[0], buf, sizeof buf)) > 0)
        r.err.append(buf, static_cast<std::size_t>(got));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    r.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    return r;
}

}  // namespace

static_assert(chainalloc::BlockOwner<Scoped<>>);
static_assert(chainalloc::DeallocatingAll<Scoped<>>);

// What the type system rejects (the escapes it can see).
static_assert(!std::is_copy_constructible_v<ScopedHandle<int>>);
static_assert(!std::is_copy_assignable_v<ScopedHandle<int>>);
static_assert(!std::is_move_assignable_v<ScopedHandle<int>>);
static_assert(!std::is_default_constructible_v<ScopedHandle<int>>);
static_assert(std::is_nothrow_move_constructible_v<ScopedHandle<int>>);
static_assert(chainalloc::contains_scope_handle_v<ScopedHandle<int>>);
static_assert(chainalloc::contains_scope_handle_v<const ScopedHandle<int>&>);
static_assert(chainalloc::contains_scope_handle_v<std::vector<ScopedHandle<Bomb>>>);
static_assert(chainalloc::contains_scope_handle_v<std::optional<ScopedHandle<int>>>);
static_assert(
    chainalloc::contains_scope_handle_v<std::tuple<int, std::pair<const int, ScopedHandle<int>>>>);
static_assert(chainalloc::contains_scope_handle_v<std::array<ScopedHandle<int>, 3>>);
static_assert(chainalloc::contains_scope_handle_v<ScopedHandle<int>*>);
static_assert(!chainalloc::contains_scope_handle_v<std::vector<int>>);
static_assert(!chainalloc::contains_scope_handle_v<int>);


BOOST_FIXTURE_TEST_SUITE(scoped, Fixture)

BOOST_AUTO_TEST_CASE(seed_example_hundred_bombs_in_a_kilobyte) {
    Scoped<> alloc(1024);
    bool ran = alloc.scope([](auto& inner) {
        std::vector<ScopedHandle<Bomb>> bombs;
        for (int i = 0; i < 100; ++i) {
            bombs.push_back(inner.template make<Bomb>(static_cast<std::uint8_t>(i)));
            BOOST_REQUIRE(bombs.back());
        }
        BOOST_TEST(bombs[42]->id == 42);
        BOOST_TEST(booms.empty());  // nothing goes off before the scope ends
    });
    BOOST_TEST(ran);
    BOOST_TEST(booms == countdown(99, 0), boost::test_tools::per_element());
    BOOST_TEST(alloc.used() == 0u);
}

BOOST_AUTO_TEST_CASE(nested_scopes_destroy_their_own_values) {
    Scoped<> alloc(4096);
    alloc.scope([](auto& a) {
        auto a1 = a.template make<Tracked>(1);
        auto a2 = a.template make<Tracked>(2);
        a.scope([](auto& b) {
            auto b1 = b.template make<Tracked>(11);
            b.scope([](auto& c) { auto c1 = c.template make<Tracked>(21); });
            BOOST_TEST(booms == std::vector<int>{21}, boost::test_tools::per_element());
            auto b2 = b.template make<Tracked>(12);
        });
        BOOST_TEST(booms == (std::vector<int>{21, 12, 11}), boost::test_tools::per_element());
        BOOST_TEST(a1->id + a2->id == 3);  // the outer scope's values are still alive
    });
    BOOST_TEST(booms == (std::vector<int>{21, 12, 11, 2, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(outer_refuses_while_inner_is_open) {
    Scoped<> alloc(1024);
    alloc.scope([&](auto& inner) {
        BOOST_TEST(alloc.inner_open());
        BOOST_TEST(!alloc.allocate(8, 8));
        BOOST_TEST(!alloc.make<int>(1));
        bool called = false;
        BOOST_TEST(!alloc.scope([&](auto&) { called = true; }));
        BOOST_TEST(!called);
        BOOST_TEST(static_cast<bool>(inner.allocate(8, 8)));  // the inner one still serves
        inner.scope([&](auto& deeper) {
            BOOST_TEST(!inner.allocate(8, 8));  // ... until it has an inner scope of its own
            BOOST_TEST(static_cast<bool>(deeper.allocate(8, 8)));
        });
        BOOST_TEST(static_cast<bool>(inner.allocate(8, 8)));
    });
    BOOST_TEST(!alloc.inner_open());
    BOOST_TEST(static_cast<bool>(alloc.allocate(8, 8)));
}

BOOST_AUTO_TEST_CASE(memory_is_reused_after_a_scope) {
    Scoped<> alloc(2048);
    Block base = alloc.allocate(100, 16);  // something on the root first: scopes start after it
    BOOST_REQUIRE(base);
    std::vector<void*> first, second;
    auto fill = [](std::vector<void*>& out) {
        return [&out](auto& inner) {
            for (int i = 0; i < 5; ++i) out.push_back(inner.template make<Tracked>(i).get());
            out.push_back(inner.allocate(40, 8).ptr);
        };
    };
    alloc.scope(fill(first));
    std::size_t used_between = alloc.used();
    alloc.scope(fill(second));
    BOOST_TEST(first.size() == 6u);
    BOOST_TEST(first == second, boost::test_tools::per_element());
    BOOST_TEST(used_between == alloc.used());
    BOOST_TEST((static_cast<char*>(first.front()) >= static_cast<char*>(base.ptr) + 100));
}

BOOST_AUTO_TEST_CASE(exception_inside_a_scope_still_destroys) {
    Scoped<> alloc(1024);
    std::size_t before = alloc.used();
    BOOST_CHECK_THROW(alloc.scope([](auto& inner) {
        auto a = inner.template make<Tracked>(1);
        auto b = inner.template make<Tracked>(2);
        throw std::runtime_error("boom");
    }),
                      std::runtime_error);
    BOOST_TEST(booms == (std::vector<int>{2, 1}), boost::test_tools::per_element());
    BOOST_TEST(!alloc.inner_open());
    BOOST_TEST(alloc.used() == before);
    BOOST_TEST(static_cast<bool>(alloc.make<int>(5)));
}

BOOST_AUTO_TEST_CASE(throwing_constructor_takes_nothing) {
    Scoped<> alloc(1024);
    alloc.scope([](auto& inner) {
        auto a = inner.template make<Tracked>(1);
        std::size_t used = inner.used();
        BOOST_CHECK_THROW(inner.template make<ThrowsOnBuild>(0), std::runtime_error);
        BOOST_TEST(inner.used() == used);
        auto b = inner.template make<Tracked>(2);
    });
    // ThrowsOnBuild's destructor never runs: it was never built.
    BOOST_TEST(booms == (std::vector<int>{2, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(exhaustion_gives_empty_handle) {
    Scoped<> alloc(64);
    BOOST_TEST(!(alloc.make<std::array<char, 100>>()));
    BOOST_TEST(!alloc.allocate(65, 1));
    BOOST_TEST(alloc.used() == 0u);  // a failed request takes nothing
    alloc.scope([](auto& inner) {
        int made = 0;
        while (inner.template make<Tracked>(made)) ++made;
        BOOST_TEST(made > 0);
        BOOST_TEST(!inner.template make<Tracked>(-1));
        BOOST_TEST(inner.remaining() < sizeof(Tracked) + 24);
    });
    BOOST_TEST(!booms.empty());
    BOOST_TEST(booms.front() == static_cast<int>(booms.size()) - 1);
}

BOOST_AUTO_TEST_CASE(made_values_are_aligned) {
    Scoped<> alloc(4096);
    alloc.scope([](auto& inner) {
        auto c = inner.template make<char>('x');
        auto w = inner.template make<Wide>();
        auto d = inner.template make<double>(1.5);
        auto w2 = inner.template make<Wide>();
        BOOST_REQUIRE(c && w && d && w2);
        BOOST_TEST(chainalloc::is_aligned(w.get(), 64));
        BOOST_TEST(chainalloc::is_aligned(w2.get(), 64));
        BOOST_TEST(chainalloc::is_aligned(d.get(), alignof(double)));
        BOOST_TEST(chainalloc::is_aligned(inner.allocate(3, 256).ptr, 256));
        BOOST_TEST(*c == 'x');
        BOOST_TEST(*d == 1.5);
    });
    BOOST_TEST(booms == (std::vector<int>{-64, -64}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(root_values_die_with_the_root) {
    {
        Scoped<> alloc(1024);
        auto a = alloc.make<Tracked>(1);
        auto b = alloc.make<Tracked>(2);
        alloc.scope([](auto& inner) { auto c = inner.template make<Tracked>(3); });
        BOOST_TEST(booms == std::vector<int>{3}, boost::test_tools::per_element());
        BOOST_TEST(a->id == 1);
    }
    BOOST_TEST(booms == (std::vector<int>{3, 2, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(deallocate_rolls_back_only_the_last_block) {
    Scoped<> alloc(1024);
    Block a = alloc.allocate(32, 16);
    Block b = alloc.allocate(32, 16);
    std::size_t used = alloc.used();
    alloc.deallocate(a);  // not the last: no-op
    BOOST_TEST(alloc.used() == used);
    alloc.deallocate(b);
    BOOST_TEST(alloc.used() == used - 32);
    alloc.deallocate(a);  // now it is the last
    BOOST_TEST(alloc.used() == 0u);
    BOOST_TEST(alloc.allocate(32, 16).ptr == a.ptr);
    // A made value is never rolled back under, even if asked to.
    auto t = alloc.make<Tracked>(7);
    alloc.deallocate(Block{t.get(), sizeof(Tracked)});
    auto u = alloc.make<Tracked>(8);
    BOOST_TEST(t->id == 7);
    BOOST_TEST(u.get() != t.get());
}

BOOST_AUTO_TEST_CASE(deallocate_all_destroys_and_resets) {
    Scoped<> alloc(1024);
    auto a = alloc.make<Tracked>(1);
    alloc.allocate(100, 8);
    alloc.deallocate_all();
    BOOST_TEST(booms == std::vector<int>{1}, boost::test_tools::per_element());
    BOOST_TEST(alloc.used() == 0u);
    alloc.scope([](auto& inner) {
        auto x = inner.template make<Tracked>(2);
        inner.deallocate_all();
        BOOST_TEST(inner.used() == 0u);
        auto y = inner.template make<Tracked>(3);
    });
    BOOST_TEST(booms == (std::vector<int>{1, 2, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(owns_is_the_region) {
    Scoped<> alloc(1024);
    Block b = alloc.allocate(10, 8);
    BOOST_TEST(alloc.owns(b.ptr));
    BOOST_TEST(alloc.owns(static_cast<char*>(b.ptr) + 1000));
    int local = 0;
    BOOST_TEST(!alloc.owns(&local));
    alloc.scope([&](auto& inner) {
        Block c = inner.allocate(10, 8);
        BOOST_TEST(inner.owns(c.ptr));
        BOOST_TEST(!inner.owns(b.ptr));  // before the inner scope's part
        BOOST_TEST(alloc.owns(c.ptr));
    });
}

BOOST_AUTO_TEST_CASE(scope_returns_the_result) {
    Scoped<> alloc(1024);
    std::optional<int> r = alloc.scope([](auto& in) { return *in.template make<int>(41) + 1; });
    BOOST_TEST(r.value() == 42);
    alloc.scope([&](auto&) {
        auto refused = alloc.scope([](auto&) { return 1; });
        BOOST_TEST(!refused.has_value());
    });
}

BOOST_AUTO_TEST_CASE(region_comes_from_the_parent_and_goes_back) {
    chainalloc::testing::CheckingAllocator<> parent;
    {
        Scoped<chainalloc::testing::CheckingAllocator<>&> alloc(4096, parent);
        BOOST_TEST(parent.live_count() == 1u);
        BOOST_TEST(alloc.capacity() == 4096u);
        alloc.scope([](auto& in) { auto t = in.template make<Tracked>(1); });
        BOOST_TEST(parent.live_count() == 1u);  // scopes never go to the parent
    }
    BOOST_TEST(parent.live_count() == 0u);
    BOOST_TEST(parent.errors() == 0u, parent.last_error());
}

BOOST_AUTO_TEST_CASE(parent_failure_gives_an_empty_region) {
    Scoped<chainalloc::Null> alloc(1024);
    BOOST_TEST(alloc.capacity() == 0u);
    BOOST_TEST(!alloc.allocate(1, 1));
    BOOST_TEST(!alloc.make<int>(1));
    BOOST_TEST(alloc.scope([](auto& in) { BOOST_TEST(!in.template make<int>(1)); }));
}

BOOST_AUTO_TEST_CASE(handle_escaping_its_scope_aborts) {
    auto r = run_in_child([] {
        Scoped<> alloc(1024);
        std::optional<ScopedHandle<Tracked>> out;
        alloc.scope([&](auto& in) { out.emplace(in.template make<Tracked>(5)); });
        std::printf("%d\n", (*out)->id);  // must not get here
    });
    BOOST_TEST(r.aborted);
    BOOST_TEST(r.err.find("handle was used after its scope ended") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(handle_from_an_earlier_scope_at_the_same_place_aborts) {
    // The later scope reuses the same memory; the generation counter still tells them apart.
    auto r = run_in_child([] {
        Scoped<> alloc(1024);
        std::vector<ScopedHandle<int>> out;
        alloc.scope([&](auto& in) { out.push_back(in.template make<int>(5)); });
        alloc.scope([&](auto& in) {
            auto fresh = in.template make<int>(6);
            if (fresh.get() != out[0].get()) std::abort();  // never reached: get() checks
        });
    });
    BOOST_TEST(r.aborted);
    BOOST_TEST(r.err.find("after its scope ended") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(handle_after_deallocate_all_aborts) {
    auto r = run_in_child([] {
        Scoped<> alloc(1024);
        auto h = alloc.make<int>(3);
        alloc.deallocate_all();
        std::printf("%d\n", *h);
    });
    BOOST_TEST(r.aborted);
    BOOST_TEST(r.err.find("after its scope ended") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(live_handles_pass_the_check) {
    // The same kind of access as above, in scope, runs to the end (exit 0, no abort).
    auto r = run_in_child([] {
        Scoped<> alloc(1024);
        auto root = alloc.make<int>(1);
        alloc.scope([&](auto& in) {
            auto h = in.template make<int>(2);
            in.scope([&](auto& deeper) {
                auto d = deeper.template make<int>(3);
                if (*root + *h + *d != 6) std::abort();
            });
            if (*h != 2) std::abort();
        });
        if (*root != 1) std::abort();
    });
    BOOST_TEST(!r.aborted);
    BOOST_TEST(r.err.empty(), r.err);
}

BOOST_AUTO_TEST_CASE(empty_handle_dereference_aborts) {
    auto r = run_in_child([] {
        Scoped<> alloc(8);
        auto h = alloc.make<std::array<char, 64>>();
        std::printf("%c\n", (*h)[0]);
    });
    BOOST_TEST(r.aborted);
    BOOST_TEST(r.err.find("empty handle") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_SUITE_END()

#endif  // CHAINALLOC_COMPILE_FAIL
