// A program that uses the installed library as an outside project would: the README's
// composition (Fallback<FreeList<System>, System>) and, unless CONSUMER_NO_JEMALLOC, the
// Jemalloc block, which needs jemalloc linked (chainalloc-jemalloc / chainalloc::jemalloc).
// Built by tests/install/test_install.sh through meson, CMake and plain pkg-config.
#include <chainalloc/fallback.hpp>
#include <chainalloc/free_list.hpp>
#include <chainalloc/system.hpp>
#ifndef CONSUMER_NO_JEMALLOC
#include <chainalloc/jemalloc.hpp>
#endif

#include <cstdint>
#include <cstdio>
#include <cstring>

using namespace chainalloc;

int main() {
    Fallback<FreeList<System>, System> alloc{FreeList<System>(1024, 64), System{}};
    Block small = alloc.allocate(100, kMinAlign);   // a free-list block
    Block large = alloc.allocate(4096, kMinAlign);  // past the free list's 1 KiB: glibc's
    bool ok = small && large && alloc.primary().owns(small.ptr) &&
              !alloc.primary().owns(large.ptr);
    if (ok) std::memset(large.ptr, 0xab, large.size);
    alloc.deallocate(small);
    alloc.deallocate(large);

#ifndef CONSUMER_NO_JEMALLOC
    Jemalloc je;
    Block b = je.allocate(1000, 64);
    ok = ok && b && b.size >= 1000 && reinterpret_cast<std::uintptr_t>(b.ptr) % 64 == 0;
    if (b) std::memset(b.ptr, 0xcd, b.size);
    je.deallocate(b);
#endif

    std::puts(ok ? "consumer: ok" : "consumer: FAILED");
    return ok ? 0 : 1;
}
