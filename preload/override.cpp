// The exported malloc family. Each entry only forwards to libc_api.hpp, where glibc's
// semantics live. Everything else in this object is hidden (exports.map), and it is linked
// without -Bsymbolic, so the program's and every library's calls resolve here.
#include "libc_api.hpp"

#define CHAINALLOC_EXPORT extern "C" __attribute__((visibility("default")))

namespace api = chainalloc::preload::api;
using std::size_t;

CHAINALLOC_EXPORT void* malloc(size_t n) noexcept { return api::malloc(n); }
CHAINALLOC_EXPORT void free(void* p) noexcept { api::free(p); }
CHAINALLOC_EXPORT void* calloc(size_t count, size_t size) noexcept { return api::calloc(count, size); }
CHAINALLOC_EXPORT void* realloc(void* p, size_t n) noexcept { return api::realloc(p, n); }
CHAINALLOC_EXPORT void* reallocarray(void* p, size_t count, size_t size) noexcept { return api::reallocarray(p, count, size); }
CHAINALLOC_EXPORT int posix_memalign(void** out, size_t align, size_t n) noexcept { return api::posix_memalign(out, align, n); }
CHAINALLOC_EXPORT void* aligned_alloc(size_t align, size_t n) noexcept { return api::memalign(align, n); }
CHAINALLOC_EXPORT void* memalign(size_t align, size_t n) noexcept { return api::memalign(align, n); }
CHAINALLOC_EXPORT void* valloc(size_t n) noexcept { return api::valloc(n); }
CHAINALLOC_EXPORT void* pvalloc(size_t n) noexcept { return api::pvalloc(n); }
CHAINALLOC_EXPORT size_t malloc_usable_size(void* p) noexcept { return api::usable_size(p); }
CHAINALLOC_EXPORT void free_sized(void* p, size_t) noexcept { api::free(p); }
CHAINALLOC_EXPORT void free_aligned_sized(void* p, size_t, size_t) noexcept { api::free(p); }
CHAINALLOC_EXPORT int malloc_trim(size_t pad) noexcept { return chainalloc::preload::trim(pad); }
