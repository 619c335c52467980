// The chain's terminals as blocks: glibc is the library's System (behind GlibcLayer, which
// marks the thread while it runs), `null` the library's Null, and jemalloc the plugin
// (jemalloc_plugin.hpp) behind JemallocLayer, a BlockOwner of the range its arenas map. Each
// goes into the chain erased (chainalloc/erased.hpp), as every layer does.
#pragma once

#include "chainalloc/system.hpp"
#include "jemalloc_plugin.hpp"
#include "runtime.hpp"

namespace chainalloc::preload {

/// The jemalloc terminal's functions, once load_jemalloc() found the plugin (nullptr before).
extern const JemallocPlugin* g_jemalloc;

/// Finds the plugin (jemalloc_loader.cpp); false, with one line on stderr, when it cannot.
bool load_jemalloc() noexcept;

/// System, with the thread marked as inside glibc's heap while a call runs (in_glibc_heap):
/// what a fork from a signal handler must know about the interrupted thread (fork.cpp).
class GlibcLayer {
public:
    static constexpr std::size_t alignment = System::alignment;

    Block allocate(std::size_t n, std::size_t align) noexcept {
        Inside in;
        return glibc_.allocate(n, align);
    }
    Block allocate_zeroed(std::size_t n, std::size_t align) noexcept {
        Inside in;
        return glibc_.allocate_zeroed(n, align);
    }
    void deallocate(Block b) noexcept {
        Inside in;
        glibc_.deallocate(b);
    }
    bool reallocate(Block& b, std::size_t n) noexcept {
        Inside in;
        return glibc_.reallocate(b, n);
    }
    std::size_t usable_size(const void* p) const noexcept { return glibc_.usable_size(p); }  // reads only

private:
    struct Inside {
        Inside() noexcept { ++t_local.state.in_glibc; }
        ~Inside() { --t_local.state.in_glibc; }
    };
    [[no_unique_address]] System glibc_;
};

/// glibc's block for n bytes (zeroed if asked): the event log's own requests (LoggerScope) and
/// jemalloc's outside our arenas.
inline void* system_allocate(std::size_t n, std::size_t align, bool zero) noexcept {
    GlibcLayer glibc;
    return (zero ? glibc.allocate_zeroed(n, align) : glibc.allocate(n, align)).ptr;
}

/// The plugin as a block. Blocks report the requested size: asking jemalloc for the usable
/// one would cost every request a lookup that only statistics read (they ask usable_size).
struct JemallocLayer {
    static constexpr std::size_t alignment = kMinAlign;

    Block allocate(std::size_t n, std::size_t align) noexcept { return wrap(g_jemalloc->allocate(n, align, false), n); }
    Block allocate_zeroed(std::size_t n, std::size_t align) noexcept { return wrap(g_jemalloc->allocate(n, align, true), n); }
    void deallocate(Block b) noexcept { g_jemalloc->deallocate(b.ptr); }
    bool reallocate(Block& b, std::size_t n) noexcept {
        void* q = g_jemalloc->reallocate(b.ptr, n);
        if (!q) return false;
        b = {q, n};
        return true;
    }
    bool owns(const void* p) const noexcept { return g_jemalloc->owns(p); }
    std::size_t usable_size(const void* p) const noexcept { return g_jemalloc->usable_size(p); }

private:
    static Block wrap(void* p, std::size_t n) noexcept { return p ? Block{p, n} : Block{}; }
};

}  // namespace chainalloc::preload
