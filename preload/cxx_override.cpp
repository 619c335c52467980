// operator new and delete, routed to the same chain as malloc.
//
// Not for speed but for consistency: libchainalloc.so links libjemalloc.so.2, which exports its
// own operator new/delete. In a C program (sqlite3, python3) libstdc++ is loaded after
// jemalloc, so without these a C++ library in that process would get jemalloc's `new` and
// libstdc++'s `delete` -> free -> our chain: a pointer reaching a backend that did not make it.
// Defining them here, first in symbol lookup, keeps every new/delete pair on the chain.
//
// Without a link to the C++ runtime: linking libstdc++ would load it (1.3 MB of RSS with the
// libm it needs) into every process, C programs included. Only C++ code calls these, and its
// runtime is then loaded, so what the standard asks of a failed `new` (call the new-handler
// until it gives up, then throw std::bad_alloc) is found there with dlsym, at the first
// failure. The exception passes through these frames (they have unwind tables and nothing to
// clean up). The nothrow forms return null, and hand over to the runtime's own nothrow forms
// (which catch what a new-handler throws) only when a handler is installed.
#include "libc_api.hpp"
#include "write_all.hpp"

#include <cstdlib>
#include <new>

#include <dlfcn.h>
#include <unistd.h>

namespace api = chainalloc::preload::api;

namespace {

using GetHandler = std::new_handler (*)();
using Thrower = void (*)();
using NothrowNew = void* (*)(std::size_t, const std::nothrow_t&);
using NothrowAlignedNew = void* (*)(std::size_t, std::align_val_t, const std::nothrow_t&);

// `name` from libstdc++ if the process has it, else (anywhere = true) from whatever defines
// it first. The nothrow forms must come from the runtime itself: first in the process are ours.
void* runtime_symbol(const char* name, bool anywhere = true) noexcept {
    if (void* handle = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD)) {
        void* sym = dlsym(handle, name);
        dlclose(handle);
        if (sym) return sym;
    }
    return anywhere ? dlsym(RTLD_DEFAULT, name) : nullptr;
}

std::new_handler current_handler() noexcept {
    auto get = reinterpret_cast<GetHandler>(runtime_symbol("_ZSt15get_new_handlerv"));
    return get ? get() : nullptr;
}

[[noreturn]] void throw_bad_alloc() {
    if (auto thrower = reinterpret_cast<Thrower>(runtime_symbol("_ZSt17__throw_bad_allocv"))) thrower();
    static const char line[] = "chainalloc: operator new failed, and no C++ runtime to throw std::bad_alloc\n";
    chainalloc::preload::write_all(STDERR_FILENO, line, sizeof line - 1);
    std::abort();
}

void* allocate(std::size_t n, std::size_t align) noexcept {
    return align <= chainalloc::kMinAlign ? api::malloc(n) : api::memalign(align, n);
}

void* new_or_throw(std::size_t n, std::size_t align) {
    for (;;) {
        if (void* p = allocate(n, align)) [[likely]]
            return p;
        std::new_handler handler = current_handler();
        if (!handler) throw_bad_alloc();
        handler();
    }
}

void* new_or_null(std::size_t n, std::size_t align) noexcept {
    if (void* p = allocate(n, align)) [[likely]]
        return p;
    if (!current_handler()) return nullptr;
    // A handler may throw: the runtime's nothrow form calls our throwing operator new and
    // catches for us.
    const std::nothrow_t tag{};  // not std::nothrow: that object is the runtime's, a link to it
    if (align <= chainalloc::kMinAlign) {
        if (auto fn = reinterpret_cast<NothrowNew>(runtime_symbol("_ZnwmRKSt9nothrow_t", false))) return fn(n, tag);
    } else if (auto fn = reinterpret_cast<NothrowAlignedNew>(runtime_symbol("_ZnwmSt11align_val_tRKSt9nothrow_t", false))) {
        return fn(n, std::align_val_t{align}, tag);
    }
    return nullptr;
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
