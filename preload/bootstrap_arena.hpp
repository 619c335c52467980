// BootstrapArena: where requests go while the chain is not ready — calls that recurse from our
// own initialisation (dlsym, pthread_atfork, ... may allocate) and calls from other threads
// that arrive while one thread is initialising (they must not wait: the initialising thread
// may be waiting for a lock they hold, the loader's for one).
//
// A Region in static storage with an atomic bump (chainalloc/region.hpp): lock-free, free a
// no-op (a handful of small blocks, never reused), a 16-byte header per block holding its size,
// for realloc and malloc_usable_size. Its pointers are recognised by address range forever
// after, so they never reach a backend that did not make them. All zero (the buffer is inside,
// no pointer to it is stored), so the object stays in .bss and costs nothing until touched.
#pragma once

#include "chainalloc/region.hpp"

#include <cstddef>

namespace chainalloc::preload {

class BootstrapArena {
public:
    static constexpr std::size_t kCapacity = 1 << 20;

private:
    using Arena = Region<InlineStorage<kCapacity>, AtomicBump>;

public:
    static constexpr std::size_t kHeader = Arena::kHeader;

    /// Zeroed memory (.bss, never reused): calloc needs no memset.
    void* allocate(std::size_t n, std::size_t align) noexcept { return region_.allocate(n, align).ptr; }
    bool owns(const void* p) const noexcept { return region_.owns(p); }
    static std::size_t size_of(const void* p) noexcept { return Arena::usable_size(p); }
    std::size_t used() const noexcept { return region_.used(); }

private:
    Arena region_;
};

}  // namespace chainalloc::preload
