// The README's library example, compiled and run by `meson test` so it stays true.
#include <chainalloc/fallback.hpp>
#include <chainalloc/free_list.hpp>
#include <chainalloc/pmr.hpp>
#include <chainalloc/scoped.hpp>
#include <chainalloc/system.hpp>

#include <cstdlib>
#include <vector>

using namespace chainalloc;

std::vector<int> gone;  // the order in which widgets were destroyed

struct Widget {
    int id;
    explicit Widget(int i) : id(i) {}
    ~Widget() { gone.push_back(id); }
};

int main() {
    // --- README begins
    Fallback<FreeList<System>, System> alloc{FreeList<System>(1024, 64), System{}};
    MemoryResource resource(alloc);
    std::pmr::vector<int> v(&resource);  // 1 KiB blocks from the free list, the rest from glibc

    Scoped<> arena(1024);
    arena.scope([](Scoped<>& inner) {
        auto a = inner.make<Widget>(1);  // destroyed, in reverse order, when the scope ends
        auto b = inner.make<Widget>(2);
    });
    // --- README ends
    for (int i = 0; i < 200; ++i) v.push_back(i);  // 800 bytes: still a free-list block
    bool ok = alloc.primary().owns(v.data()) && gone == std::vector<int>{2, 1};
    for (int i = 0; i < 1000; ++i) v.push_back(i);  // past 1 KiB: glibc's
    ok = ok && !alloc.primary().owns(v.data());
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
