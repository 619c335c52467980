// Region<Storage, Bump>: bump allocation in a buffer it is given, for memory that is never
// given back one block at a time (start-up, a request's scratch space). Free is a no-op;
// deallocate_all starts over. `owns` is the buffer's range, `usable_size` a 16-byte header in
// front of each block (so realloc and malloc_usable_size work on blocks it made).
//
// Storage: InlineStorage<N> (the bytes inside the Region: in static storage, an all-zero .bss
// object, no constructor to run) or ExternalStorage (a buffer from elsewhere: a parent
// allocator's block, a mapping). Bump: PlainBump (one thread) or AtomicBump (lock-free; any
// thread may allocate at any time, even while another is inside the same call).
#pragma once

#include "allocator.hpp"

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace chainalloc {

template <std::size_t N>
struct InlineStorage {
    alignas(64) char bytes[N] = {};  // zero, and never reused: a first block needs no memset
    char* base() noexcept { return bytes; }
    const char* base() const noexcept { return bytes; }
    static constexpr std::size_t capacity() noexcept { return N; }
};

struct ExternalStorage {
    char* begin = nullptr;
    std::size_t size = 0;
    ExternalStorage() = default;
    ExternalStorage(void* p, std::size_t n) noexcept : begin(static_cast<char*>(p)), size(p ? n : 0) {}
    explicit ExternalStorage(Block b) noexcept : ExternalStorage(b.ptr, b.size) {}
    char* base() const noexcept { return begin; }
    std::size_t capacity() const noexcept { return size; }
};

/// Offsets of the bump: `advance(from, to)` moves it from `from` to `to`, or reloads `from`
/// and fails when another thread moved it first.
struct PlainBump {
    std::size_t used = 0;
    std::size_t load() const noexcept { return used; }
    bool advance(std::size_t&, std::size_t to) noexcept {
        used = to;
        return true;
    }
    void reset() noexcept { used = 0; }
};

struct AtomicBump {
    std::atomic<std::size_t> used{0};
    std::size_t load() const noexcept { return used.load(std::memory_order_relaxed); }
    // Relaxed: the block's bytes are the allocating thread's until it hands the pointer on,
    // and that hand-over orders them.
    bool advance(std::size_t& from, std::size_t to) noexcept {
        return used.compare_exchange_weak(from, to, std::memory_order_relaxed);
    }
    void reset() noexcept { used.store(0, std::memory_order_relaxed); }
};

template <class Storage, class Bump = PlainBump>
class Region {
public:
    static constexpr std::size_t kHeader = kMinAlign;  // keeps every block 16-aligned
    static constexpr std::size_t alignment = kMinAlign;

    constexpr Region() = default;
    explicit Region(Storage storage) noexcept : storage_(storage) {}
    Region(const Region&) = delete;  // the bump and the blocks are one region's
    Region& operator=(const Region&) = delete;
    /// An external buffer can change hands (into a Fallback, say): the blocks stay where they
    /// are. Inline storage cannot: its blocks would move with it.
    Region(Region&& o) noexcept
        requires std::is_same_v<Storage, ExternalStorage>
        : storage_(o.storage_) {
        std::size_t fresh = 0;
        bump_.advance(fresh, o.bump_.load());
        o.storage_ = {};
        o.bump_.reset();
    }

    /// Blocks are multiples of 16 bytes, each after its header.
    Block allocate(std::size_t n, std::size_t align) noexcept {
        const std::size_t cap = storage_.capacity();
        if (align < kHeader) align = kHeader;
        if (n > cap || align > cap) return {};
        const std::size_t size = align_up(n ? n : 1, kHeader);
        const auto base = reinterpret_cast<std::uintptr_t>(storage_.base());
        std::size_t used = bump_.load();
        for (;;) {
            std::uintptr_t start = align_up(base + used + kHeader, align);
            std::size_t next = start + size - base;
            if (next > cap) return {};
            if (bump_.advance(used, next)) {
                reinterpret_cast<std::size_t*>(start)[-1] = size;
                return {reinterpret_cast<void*>(start), size};
            }
        }
    }

    /// A no-op: the space comes back with deallocate_all.
    void deallocate(Block) noexcept {}

    /// The whole buffer, handed out or not; reads no memory.
    bool owns(const void* p) const noexcept {
        return reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(storage_.base()) <
               storage_.capacity();
    }

    /// From the block's header; p must be a block this region made.
    static std::size_t usable_size(const void* p) noexcept { return static_cast<const std::size_t*>(p)[-1]; }

    /// Starts over. Not while another thread allocates (AtomicBump makes allocation safe, not
    /// this).
    void deallocate_all() noexcept { bump_.reset(); }

    std::size_t used() const noexcept { return bump_.load(); }
    std::size_t capacity() const noexcept { return storage_.capacity(); }
    Storage& storage() noexcept { return storage_; }

private:
    Storage storage_{};
    Bump bump_{};
};

}  // namespace chainalloc
