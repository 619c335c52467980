// operator new and delete, routed to the same chain as malloc.
//
// Not for speed but for consistency: libchainalloc.so links libjemalloc.so.2, which exports its
// own operator new/delete. In a C program (sqlite3, python3) libstdc++ is loaded after
// jemalloc, so without these a C++ library in that process would get jemalloc's `new` and
// libstdc++'s `delete` -> free -> our chain: a pointer reaching a backend that did not make it.
// Defining them here, first in symbol lookup, keeps every new/delete pair on the chain.
//
// Built with exceptions (unlike the allocation paths): operator new must throw std::bad_alloc
// after the new-handler loop, as the standard requires.
#include "libc_api.hpp"

#include <new>

namespace api = chainalloc::preload::api;

namespace {

void* new_or_throw(std::size_t n, std::size_t align) {
    for (;;) {
        void* p = align <= chainalloc::kMinAlign ? api::malloc(n) : api::memalign(align, n);
        if (p) [[likely]] return p;
        std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
    }
}

void* new_or_null(std::size_t n, std::size_t align) noexcept {
    try {
        return new_or_throw(n, align);
    } catch (...) {
        return nullptr;
    }
}

}  // namespace

#define CHAINALLOC_EXPORT __attribute__((visibility("default")))
using std::size_t;
using std::align_val_t;
using std::nothrow_t;
constexpr size_t kDefault = chainalloc::kMinAlign;

CHAINALLOC_EXPORT void* operator new(size_t n) { return new_or_throw(n, kDefault); }
CHAINALLOC_EXPORT void* operator new[](size_t n) { return new_or_throw(n, kDefault); }
CHAINALLOC_EXPORT void* operator new(size_t n, const nothrow_t&) noexcept { return new_or_null(n, kDefault); }
CHAINALLOC_EXPORT void* operator new[](size_t n, const nothrow_t&) noexcept { return new_or_null(n, kDefault); }
CHAINALLOC_EXPORT void* operator new(size_t n, align_val_t a) { return new_or_throw(n, static_cast<size_t>(a)); }
CHAINALLOC_EXPORT void* operator new[](size_t n, align_val_t a) { return new_or_throw(n, static_cast<size_t>(a)); }
CHAINALLOC_EXPORT void* operator new(size_t n, align_val_t a, const nothrow_t&) noexcept { return new_or_null(n, static_cast<size_t>(a)); }
CHAINALLOC_EXPORT void* operator new[](size_t n, align_val_t a, const nothrow_t&) noexcept { return new_or_null(n, static_cast<size_t>(a)); }

CHAINALLOC_EXPORT void operator delete(void* p) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete[](void* p) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete(void* p, const nothrow_t&) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete[](void* p, const nothrow_t&) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete(void* p, size_t) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete[](void* p, size_t) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete(void* p, align_val_t) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete[](void* p, align_val_t) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete(void* p, align_val_t, const nothrow_t&) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete[](void* p, align_val_t, const nothrow_t&) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete(void* p, size_t, align_val_t) noexcept { api::free(p); }
CHAINALLOC_EXPORT void operator delete[](void* p, size_t, align_val_t) noexcept { api::free(p); }
