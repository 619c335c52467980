// Pointers that reach glibc because no layer of ours owns them. Most are glibc's own blocks
// (the `system` terminal's, a library bound to glibc, __libc_malloc's), but a program that
// frees a stack address, a global or an mmap()ed page sends it here too. glibc would then
// abort with "free(): invalid pointer", a message that does not say chainalloc is in the
// process, or worse, take the address into its bins. So the checks glibc's free makes first
// are made here, with a message of ours, plus two that glibc cannot make: the main thread's
// stack and the program's own globals.
//
// Only what is certain to be mapped is read: the 16-byte chunk header before p, which lies in
// p's own page unless p is page-aligned; for a page-aligned p, mincore() says first whether
// the page before it exists (such frees are rare: memalign(4096) and up). A check passes every
// real glibc block: a false alarm would kill a correct program.
#include "foreign_pointer.hpp"

#include "write_all.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

extern "C" void* __libc_stack_end;  // ld.so: the top of the main thread's stack

namespace chainalloc::preload {
namespace {

struct Range {
    std::uintptr_t lo = 0, hi = 0;
    bool has(std::uintptr_t a) const noexcept { return a - lo < hi - lo; }
};

constexpr unsigned kMaxGlobals = 4;
constinit Range g_stack;
constinit Range g_globals[kMaxGlobals];
constinit std::uintptr_t g_page = 4096;

// glibc's chunk header: the word before p holds the chunk's size and three flag bits.
constexpr std::size_t kMmapped = 2, kFlags = 7, kMinChunk = 32;

bool mapped(std::uintptr_t page) noexcept {
    unsigned char v;
    return mincore(reinterpret_cast<void*>(page), 1, &v) == 0;
}

}  // namespace

void foreign_pointer_init() noexcept {
    g_page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    // The main stack: from its top (plus the argument and environment strings above it) down
    // by its limit, at most 64 MiB (unlimited stacks grow into whatever is free).
    auto top = reinterpret_cast<std::uintptr_t>(__libc_stack_end);
    rlimit rl{};
    std::uintptr_t depth = 8u << 20;
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) depth = rl.rlim_cur;
    if (depth > (64u << 20)) depth = 64u << 20;
    if (top > depth) g_stack = {top - depth, top + (1u << 20)};
    // The program's writable segments (.data, .bss), from its program headers (AT_PHDR: no
    // loader lock, which the caller may hold).
    auto* phdr = reinterpret_cast<const ElfW(Phdr)*>(getauxval(AT_PHDR));
    std::size_t count = getauxval(AT_PHNUM);
    if (!phdr) return;
    std::uintptr_t bias = 0;
    for (std::size_t i = 0; i < count; ++i)
        if (phdr[i].p_type == PT_PHDR) bias = reinterpret_cast<std::uintptr_t>(phdr) - phdr[i].p_vaddr;
    unsigned n = 0;
    for (std::size_t i = 0; i < count && n < kMaxGlobals; ++i)
        if (phdr[i].p_type == PT_LOAD && (phdr[i].p_flags & PF_W))
            g_globals[n++] = {bias + phdr[i].p_vaddr, bias + phdr[i].p_vaddr + phdr[i].p_memsz};
}

const char* not_from_glibc(const void* p) noexcept {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    if (a % 16) return "not 16-byte aligned, so no allocator's block";
    if (g_stack.has(a)) return "an address on the main thread's stack";
    for (const Range& r : g_globals)
        if (r.has(a)) return "an address in the program's global variables";
    if (a < g_page || (a % g_page == 0 && !mapped(a - g_page))) return "no allocator's block (nothing mapped before it)";
    const auto* header = reinterpret_cast<const std::size_t*>(a - 16);
    std::size_t size = header[1] & ~kFlags;
    if (header[1] & kMmapped) {
        // A chunk of its own mapping: the mapping starts prev_size bytes before the chunk, and
        // both it and its length are whole pages.
        std::uintptr_t start = a - 16 - header[0];
        std::uintptr_t offset = a & (g_page - 1);
        if (((start | (header[0] + size)) & (g_page - 1)) || (offset & (offset - 1)))
            return "no allocator's block (its header is not glibc's)";
    } else if (size < kMinChunk || size % 16 || a - 16 > ~size + 1) {
        return "no allocator's block (its header is not glibc's)";
    }
    return nullptr;
}

[[noreturn]] void abort_on_foreign(const char* call, const void* p, const char* why) noexcept {
    char line[256];
    int n = std::snprintf(line, sizeof line, "chainalloc: %s(%p): %s; no layer of the chain owns it\n", call, p, why);
    write_formatted(line, n);
    abort();
}

}  // namespace chainalloc::preload
