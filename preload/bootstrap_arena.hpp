// BootstrapArena: where requests go while the chain is not ready — calls that recurse from our
// own initialisation (dlsym, pthread_atfork, ... may allocate) and calls from other threads
// that arrive while one thread is initialising (they must not wait: the initialising thread
// may be waiting for a lock they hold, the loader's for one).
//
// Bump allocation in static storage, lock-free; free is a no-op (a handful of small blocks, never
// reused). Each block is preceded by a 16-byte header holding its size, for realloc and
// malloc_usable_size. Its pointers are recognised by address range forever after, so they
// never reach a backend that did not make them.
#pragma once

#include "chainalloc/allocator.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace chainalloc::preload {

class BootstrapArena {
public:
    static constexpr std::size_t kCapacity = 1 << 20;  // .bss: costs nothing until touched
    static constexpr std::size_t kHeader = 16;

    void* allocate(std::size_t n, std::size_t align) noexcept {
        if (align < kHeader) align = kHeader;
        if (n > kCapacity || align > kCapacity / 2) return nullptr;
        std::size_t size = align_up(n ? n : 1, kHeader);
        std::size_t used = used_.load(std::memory_order_relaxed);
        for (;;) {
            std::uintptr_t base = reinterpret_cast<std::uintptr_t>(buffer_);
            std::uintptr_t start = align_up(base + used + kHeader, align);
            std::size_t next = start + size - base;
            if (next > kCapacity) return nullptr;
            if (used_.compare_exchange_weak(used, next, std::memory_order_relaxed)) {
                reinterpret_cast<std::size_t*>(start)[-1] = size;
                return reinterpret_cast<void*>(start);
            }
        }
    }

    bool owns(const void* p) const noexcept {
        return reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(buffer_) < kCapacity;
    }

    static std::size_t size_of(const void* p) noexcept {
        return static_cast<const std::size_t*>(p)[-1];
    }

    std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }

private:
    alignas(64) char buffer_[kCapacity] = {};  // zero: calloc needs no memset
    std::atomic<std::size_t> used_{0};
};

}  // namespace chainalloc::preload
