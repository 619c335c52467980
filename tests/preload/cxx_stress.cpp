// C++ on whatever allocator runs the process: operator new/delete (plain, sized, aligned)
// reach malloc/free/aligned_alloc through libstdc++, so the preload serves them too.
// Strings, containers, exceptions thrown in one thread and caught in another, thread_local
// destructors, std::thread churn. Same output convention as the C programs.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "check.h"

namespace {

int n_threads = 4;

// Keeps the compiler from eliding a new/delete pair (-fallocation-dce), so the call happens.
template <class T>
T* escape(T* p) {
    asm volatile("" : : "r"(p) : "memory");
    return p;
}

std::string make_string(uint64_t& rng) {
    std::string s;
    size_t n = rng_below(&rng, 200);
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + rng_below(&rng, 26)));
    return s;
}

// Each thread builds the same containers from the same seed, so their digests must agree.
uint64_t container_work(uint64_t seed) {
    uint64_t rng = seed;
    std::map<std::string, std::vector<int>> tree;
    std::unordered_map<uint64_t, std::string> hash;
    std::deque<std::string> dq;
    std::list<std::unique_ptr<std::string>> owned;
    for (int i = 0; i < 20000; ++i) {
        std::string k = make_string(rng);
        tree[k].push_back(i);
        hash[rng_next(&rng) % 5000] = k + k;
        dq.push_back(k);
        if (dq.size() > 300) dq.pop_front();
        owned.push_back(std::make_unique<std::string>(k));
        if (owned.size() > 200) owned.pop_front();
    }
    uint64_t digest = 1469598103934665603ull;  // FNV-1a over the results
    auto mix = [&digest](uint64_t v) { digest = (digest ^ v) * 1099511628211ull; };
    for (const auto& [k, v] : tree) {
        for (char c : k) mix(static_cast<unsigned char>(c));
        mix(v.size());
    }
    std::vector<std::pair<uint64_t, std::string>> sorted(hash.begin(), hash.end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [k, v] : sorted) mix(k + v.size());
    for (const auto& s : dq) mix(s.size());
    for (const auto& p : owned) mix(p->size());
    return digest;
}

void test_containers_across_threads() {
    uint64_t expected = container_work(42);
    std::vector<std::future<uint64_t>> results;
    for (int i = 0; i < n_threads; ++i)
        results.push_back(std::async(std::launch::async, container_work, 42));
    for (auto& r : results) {
        uint64_t got = r.get();
        CHECK(got == expected, "container digest %llx in a thread, %llx in main",
              static_cast<unsigned long long>(got), static_cast<unsigned long long>(expected));
    }
}

struct alignas(64) CacheLine {
    unsigned char bytes[64];
};

struct alignas(4096) Page {
    unsigned char bytes[4096];
};

void test_new_delete() {
    int misaligned = 0, corrupt = 0;
    uint64_t rng = 7;
    for (int round = 0; round < 2000; ++round) {
        size_t n = 1 + rng_below(&rng, 5000);
        auto* a = new unsigned char[n];
        if (reinterpret_cast<uintptr_t>(a) % 16) ++misaligned;
        pattern_fill(a, n, n);
        auto* c = new CacheLine[3];  // aligned new: goes to aligned_alloc
        if (reinterpret_cast<uintptr_t>(c) % 64) ++misaligned;
        auto* p = new Page;
        if (reinterpret_cast<uintptr_t>(p) % 4096) ++misaligned;
        pattern_fill(p->bytes, sizeof p->bytes, 3);
        auto* s = escape(new std::string(n, 'x'));  // sized delete below
        if (!pattern_ok(a, n, n) || !pattern_ok(p->bytes, sizeof p->bytes, 3)) ++corrupt;
        delete s;
        delete p;
        delete[] c;
        delete[] a;
    }
    CHECK(misaligned == 0, "%d new results misaligned for their type", misaligned);
    CHECK(corrupt == 0, "%d blocks from new corrupted", corrupt);

    // nothrow new of an impossible size returns nullptr; plain new throws bad_alloc.
    volatile size_t huge = static_cast<size_t>(PTRDIFF_MAX) - 100;
    auto* none = escape(new (std::nothrow) unsigned char[huge]);
    CHECK(none == nullptr, "new(nothrow) of PTRDIFF_MAX bytes returned %p", static_cast<void*>(none));
    delete[] none;
    bool threw = false;
    try {
        auto* q = escape(new unsigned char[huge]);
        delete[] q;
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    CHECK(threw, "new of PTRDIFF_MAX bytes did not throw std::bad_alloc");
}

// Exceptions allocate (__cxa_allocate_exception uses malloc) and are freed wherever the last
// exception_ptr dies: often another thread.
void test_exceptions_across_threads() {
    std::atomic<int> caught{0};
    std::vector<std::thread> ts;
    std::mutex m;
    std::vector<std::exception_ptr> handed_over;
    for (int i = 0; i < n_threads; ++i)
        ts.emplace_back([&, i] {
            for (int k = 0; k < 500; ++k) {
                try {
                    throw std::runtime_error("error " + std::to_string(i) + "/" +
                                             std::to_string(k) + std::string(k % 300, '!'));
                } catch (const std::runtime_error& e) {
                    if (std::string(e.what()).rfind("error " + std::to_string(i), 0) == 0)
                        ++caught;
                    std::lock_guard<std::mutex> g(m);
                    handed_over.push_back(std::current_exception());
                }
            }
        });
    for (auto& t : ts) t.join();
    CHECK(caught == n_threads * 500, "caught %d of %d exceptions", caught.load(),
          n_threads * 500);
    int rethrown = 0;
    for (auto& e : handed_over) {
        try {
            std::rethrow_exception(e);
        } catch (const std::runtime_error& err) {
            rethrown += std::string(err.what()).rfind("error ", 0) == 0;
        }
    }
    CHECK(rethrown == n_threads * 500, "rethrew %d of %d in main", rethrown, n_threads * 500);
    handed_over.clear();  // the exception objects die here, in main

    // Through std::async: thrown in the worker, caught in main.
    int from_async = 0;
    for (int i = 0; i < 200; ++i) {
        auto f = std::async(std::launch::async, [i]() -> int {
            if (i % 2) throw std::out_of_range(std::string(100 + i, 'o'));
            return i;
        });
        try {
            from_async += f.get() == i;
        } catch (const std::out_of_range& e) {
            from_async += std::string(e.what()).size() == static_cast<size_t>(100 + i);
        }
    }
    CHECK(from_async == 200, "%d of 200 async results or exceptions right", from_async);
}

// thread_local objects with destructors that allocate (run by __call_tls_dtors at exit).
std::atomic<int> tls_dtor_ok{0};

struct TlsHolder {
    std::vector<std::string> strings;
    ~TlsHolder() {
        std::string joined;
        for (const auto& s : strings) joined += s;
        auto copy = std::make_unique<std::vector<std::string>>(strings);
        if (joined.size() == 100 * 50 && copy->size() == 100) ++tls_dtor_ok;
    }
};

thread_local TlsHolder tls_holder;

void test_thread_churn_and_tls() {
    std::atomic<int> bad{0};
    int started = 0;
    for (int round = 0; round < 100; ++round) {
        std::vector<std::thread> ts;
        std::vector<std::unique_ptr<std::vector<int>>> left(static_cast<size_t>(n_threads));
        for (int i = 0; i < n_threads; ++i, ++started)
            ts.emplace_back([&left, &bad, i, round] {
                for (int k = 0; k < 100; ++k) tls_holder.strings.emplace_back(50, 'z');
                auto v = std::make_unique<std::vector<int>>();
                for (int k = 0; k < 1000; ++k) v->push_back(k * round);
                if ((*v)[999] != 999 * round) ++bad;
                left[static_cast<size_t>(i)] = std::move(v);  // freed by main
            });
        for (auto& t : ts) t.join();
        for (size_t i = 0; i < left.size(); ++i)
            if (!left[i] || (*left[i])[10] != 10 * round) ++bad;
    }
    CHECK(bad == 0, "%d thread results wrong", bad.load());
    CHECK(tls_dtor_ok == started, "%d of %d thread_local destructors ran correctly",
          tls_dtor_ok.load(), started);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) n_threads = std::atoi(argv[1]);
    if (n_threads < 1 || n_threads > 64) n_threads = 4;
    test_new_delete();
    test_containers_across_threads();
    test_exceptions_across_threads();
    test_thread_churn_and_tls();
    return check_finish();
}
