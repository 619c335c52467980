// Fuzz target: the composed allocator, i.e. libchainalloc.so's own sources linked into this
// executable, so they define malloc & co and serve every allocation in the process, libFuzzer's
// included. The chain comes from CHAINALLOC_CHAIN, read once per process: scripts/fuzz runs this
// binary under several chains.
//
// The input is a sequence of operations (malloc, calloc, realloc, reallocarray, free,
// memalign / aligned_alloc / posix_memalign, valloc, pvalloc, malloc_usable_size,
// operator new/delete, and blocks from glibc's own __libc_malloc, which the preload must hand
// back to glibc under every chain) over a table of live blocks. Each block is filled with a pattern that depends on the block
// and the offset (all of a small block, samples of a large one), so a block handed out twice,
// a lost realloc copy or a stray write shows up as a wrong byte. Checked after each step, per the contract in preload/libc_api.hpp:
//  - contents are intact at free and realloc (realloc keeps the prefix), calloc zeroes;
//  - results are 16-byte aligned, or aligned as asked; malloc_usable_size >= the size asked;
//  - no two live blocks overlap, nor overlap libFuzzer's copy of the input (ownership);
//  - a failure is NULL with errno ENOMEM (EINVAL for an alignment glibc 2.36 refuses); free keeps errno;
//  - sizes past PTRDIFF_MAX and calloc overflows always fail; other sizes up to a few MiB
//    only fail when the chain can refuse (it contains `null`).
#include "config/parse.hpp"

#include <malloc.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" void* __libc_malloc(std::size_t n);  // glibc's, bypassing the chain (a foreign block)

namespace {

constexpr unsigned kSlots = 16;
constexpr std::size_t kMinAlign = 16;

enum class Kind : std::uint8_t { malloc, new_scalar, new_array, new_aligned };

struct Slot {
    unsigned char* p = nullptr;
    std::size_t n = 0;        // size asked for
    std::size_t usable = 0;   // malloc_usable_size at allocation (what was filled)
    std::uint64_t seed = 0;   // pattern of the contents
    Kind kind = Kind::malloc;
    std::size_t align = 0;    // for new_aligned
};

Slot g_slots[kSlots];
std::uint64_t g_next_seed = 1;
bool g_may_fail = false;  // the chain ends in `null`: NULL is an allowed answer
const std::uint8_t* g_input = nullptr;
std::size_t g_input_size = 0;

[[noreturn]] void finding(const char* what, std::size_t a = 0, std::size_t b = 0) {
    std::fprintf(stderr, "fuzz_alloc: %s (%zu, %zu) under CHAINALLOC_CHAIN=%s\n", what, a, b,
                 std::getenv("CHAINALLOC_CHAIN") ? std::getenv("CHAINALLOC_CHAIN") : "(unset)");
    std::abort();
}

// ---- input ------------------------------------------------------------------------------

/// Reads the input front to back; past its end every byte is 0.
struct Reader {
    const std::uint8_t* p;
    std::size_t n;
    bool more() const { return n != 0; }
    std::uint8_t byte() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
};

/// Sizes the allocator treats differently: class edges, page and mmap thresholds, and sizes
/// that must always fail.
constexpr std::size_t kInteresting[] = {
    0, 1, 15, 16, 17, 31, 32, 33, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025,
    4095, 4096, 4097, 8192, 32767, 32768, 32769, 65535, 65536, 131072, 131073,
    (1u << 20) - 1, 1u << 20, (1u << 20) + 1, 4u << 20, (4u << 20) + 1,
    PTRDIFF_MAX, std::size_t{PTRDIFF_MAX} + 1, SIZE_MAX - 4096, SIZE_MAX - 15, SIZE_MAX};

/// A size, tiny (0..63), small (..16 KiB), large (..4 MiB) or one of kInteresting.
std::size_t read_size(Reader& r) {
    std::uint8_t b = r.byte();
    switch (b >> 6) {
        case 0: return b & 63;
        case 1: return (std::size_t{b & 63u} << 8) | r.byte();
        case 2: {
            std::size_t hi = b & 63u;
            std::size_t mid = r.byte();
            return (hi << 16) | (mid << 8) | r.byte();
        }
        default: return kInteresting[(b & 63u) % (sizeof kInteresting / sizeof kInteresting[0])];
    }
}

/// Alignments: powers of two from 1 to 1 MiB, and a few that are not.
std::size_t read_align(Reader& r) {
    std::uint8_t b = r.byte();
    if (b < 224) return std::size_t{1} << (b % 21);
    constexpr std::size_t kOdd[] = {0, 3, 24, 48, 96, 4095, 4097, std::size_t{1} << 63};
    return kOdd[b % 8];
}

bool must_fail(std::size_t n, std::size_t align = kMinAlign) {
    return n > PTRDIFF_MAX || align > (std::size_t{1} << 40);  // no address space fits those
}
/// Failing is fine on a chain that can refuse, and for sizes no machine has (PTRDIFF_MAX).
bool may_fail(std::size_t n, std::size_t align = kMinAlign) {
    return g_may_fail || n > (std::size_t{1} << 30) || must_fail(n, align);
}
bool is_pow2(std::size_t a) { return a != 0 && (a & (a - 1)) == 0; }

// ---- contents ---------------------------------------------------------------------------

std::uint64_t word_at(std::uint64_t seed, std::size_t offset) {
    return seed * 0x9E3779B97F4A7C15ull ^ (offset * 0xBF58476D1CE4E5B9ull);
}

// A block's first kDense bytes carry the pattern, then 64 bytes of every kStride: enough to see
// a lost copy or two blocks sharing memory, without touching every page of a 4 MiB block at
// every step (that made the target 10x slower). Which bytes depends on the offset only, so a
// realloc'd prefix is checked at the same places it was filled.
constexpr std::size_t kDense = 8192, kStride = 16384, kSample = 64;

template <class Fn>
void for_each_patterned(std::size_t n, Fn fn) {  // fn(offset, length); offsets are 8-aligned
    fn(0, n < kDense ? n : kDense);
    for (std::size_t off = kStride; off < n; off += kStride) fn(off, n - off < kSample ? n - off : kSample);
}

void fill(unsigned char* p, std::size_t n, std::uint64_t seed) {
    for_each_patterned(n, [&](std::size_t off, std::size_t len) {
        for (std::size_t i = off; i < off + len; i += 8) {
            std::uint64_t w = word_at(seed, i);
            std::memcpy(p + i, &w, off + len - i < 8 ? off + len - i : 8);
        }
    });
}

void check(const unsigned char* p, std::size_t n, std::uint64_t seed, const char* when) {
    for_each_patterned(n, [&](std::size_t off, std::size_t len) {
        for (std::size_t i = off; i < off + len; i += 8) {
            std::uint64_t w = word_at(seed, i);
            if (std::memcmp(p + i, &w, off + len - i < 8 ? off + len - i : 8) != 0)
                finding(when, i, n);
        }
    });
}

bool zeroed(const unsigned char* p, std::size_t n) {
    bool zero = true;
    for_each_patterned(n, [&](std::size_t off, std::size_t len) {
        for (std::size_t i = off; i < off + len; ++i) zero = zero && p[i] == 0;
    });
    return zero;
}

// ---- checks on a new block --------------------------------------------------------------

bool overlaps(const void* a, std::size_t an, const void* b, std::size_t bn) {
    auto x = reinterpret_cast<std::uintptr_t>(a), y = reinterpret_cast<std::uintptr_t>(b);
    return x < y + (bn ? bn : 1) && y < x + (an ? an : 1);
}

/// A new block of n bytes at p, to go in slot `self`: checks it and fills it.
void adopt(unsigned self, void* p, std::size_t n, std::size_t align, Kind kind) {
    if (reinterpret_cast<std::uintptr_t>(p) % (align < kMinAlign ? kMinAlign : align) != 0)
        finding("misaligned block", reinterpret_cast<std::uintptr_t>(p), align);
    std::size_t usable = malloc_usable_size(p);
    if (usable < n) finding("malloc_usable_size below the size asked", usable, n);
    for (unsigned i = 0; i < kSlots; ++i)
        if (i != self && g_slots[i].p && overlaps(p, usable, g_slots[i].p, g_slots[i].usable))
            finding("new block overlaps a live block", n, g_slots[i].n);
    if (overlaps(p, usable, g_input, g_input_size)) finding("new block overlaps the fuzz input", n);
    Slot& s = g_slots[self];
    s = Slot{static_cast<unsigned char*>(p), n, usable, g_next_seed++, kind, align};
    fill(s.p, usable, s.seed);
}

/// A failed request: NULL with errno ENOMEM, and only where failing is allowed.
void failed(std::size_t n, int expected_errno = ENOMEM) {
    if (errno != expected_errno) finding("failure with the wrong errno", errno, n);
    if (expected_errno == ENOMEM && !may_fail(n))
        finding("allocation failed on a chain that cannot refuse", n);
}

// ---- operations -------------------------------------------------------------------------

void release(unsigned i) {
    Slot& s = g_slots[i];
    if (!s.p) return;
    check(s.p, s.usable, s.seed, "block changed before free");
    errno = 1234;
    switch (s.kind) {
        case Kind::malloc: std::free(s.p); break;
        case Kind::new_scalar: ::operator delete(s.p, s.n); break;
        case Kind::new_array: ::operator delete[](s.p); break;
        case Kind::new_aligned: ::operator delete(s.p, std::align_val_t(s.align)); break;
    }
    if (errno != 1234) finding("free changed errno", errno);
    s = Slot{};
}

void do_malloc(unsigned i, Reader& r) {
    release(i);
    std::size_t n = read_size(r);
    errno = 0;
    void* p = std::malloc(n);
    if (p && must_fail(n)) finding("malloc of an impossible size succeeded", n);
    if (p) adopt(i, p, n, kMinAlign, Kind::malloc); else failed(n);
}

void do_calloc(unsigned i, Reader& r) {
    release(i);
    std::size_t count = read_size(r), size = read_size(r);
    std::size_t n;
    bool overflow = __builtin_mul_overflow(count, size, &n);
    if (!overflow && n > (8u << 20)) return;  // a huge product that fits would only be slow
    errno = 0;
    void* p = std::calloc(count, size);
    if (!p) return failed(overflow ? SIZE_MAX : n);
    if (overflow || must_fail(n)) finding("calloc of an impossible size succeeded", count, size);
    if (!zeroed(static_cast<unsigned char*>(p), n)) finding("calloc block not zeroed", n);
    adopt(i, p, n, kMinAlign, Kind::malloc);
}

// realloc and reallocarray: from NULL, to 0, growing, shrinking; the prefix must survive.
void do_realloc(unsigned i, Reader& r, bool array) {
    Slot& s = g_slots[i];
    if (s.p && s.kind != Kind::malloc) return release(i);  // only malloc's blocks
    std::size_t n = read_size(r), count = 1;
    if (array) {
        count = (r.byte() % 4) + 1;
        if (n % count == 0) n /= count;  // keep the product near the size read
    }
    std::size_t total;
    bool overflow = __builtin_mul_overflow(n, count, &total);
    Slot old = s;
    if (old.p) check(old.p, old.usable, old.seed, "block changed before realloc");
    errno = 0;
    void* q = array ? reallocarray(old.p, count, n) : std::realloc(old.p, total);
    if (old.p && !overflow && total == 0) {
        // glibc 2.36: realloc(p, 0) frees p and returns NULL.
        if (q) finding("realloc(p, 0) returned a block");
        s = Slot{};
        return;
    }
    if (!q) {
        failed(overflow ? SIZE_MAX : total);
        if (old.p) check(old.p, old.usable, old.seed, "failed realloc changed the block");
        return;
    }
    if (overflow || must_fail(total)) finding("realloc to an impossible size succeeded", total);
    if (old.p) {
        std::size_t keep = old.n < total ? old.n : total;
        check(static_cast<unsigned char*>(q), keep, old.seed, "realloc lost the prefix");
    }
    s = Slot{};
    adopt(i, q, total, kMinAlign, Kind::malloc);
}

// Called through pointers: their declarations carry alloc_align, so UBSan would check a result
// against an alignment such as 3 or 4097, which glibc 2.36 rounds up to a power of two.
void* (*volatile g_memalign)(std::size_t, std::size_t) = memalign;
void* (*volatile g_aligned_alloc)(std::size_t, std::size_t) = aligned_alloc;

// memalign, aligned_alloc, posix_memalign, valloc, pvalloc, with good and bad alignments.
void do_aligned(unsigned i, Reader& r) {
    release(i);
    std::uint8_t which = r.byte() % 5;
    std::size_t align = read_align(r), n = read_size(r);
    errno = 0;
    void* p = nullptr;
    int bad = 0;  // the errno / result expected for this alignment, 0 if it is good
    switch (which) {
        // glibc 2.36: an alignment that is not a power of two is rounded up to the next one;
        // only one past the largest power of two is EINVAL.
        case 0:
        case 1:
            p = (which == 0 ? g_memalign : g_aligned_alloc)(align, n);
            bad = align > SIZE_MAX / 2 + 1 ? EINVAL : 0;
            if (!bad && !is_pow2(align)) align = std::bit_ceil(align);
            break;
        case 2: {
            bad = (is_pow2(align) && align % sizeof(void*) == 0) ? 0 : EINVAL;
            void* out = reinterpret_cast<void*>(0x1);
            int saved = errno = 4321;
            int rc = posix_memalign(&out, align, n);
            if (errno != saved) finding("posix_memalign changed errno", errno);
            if (rc == 0) {
                p = out;
            } else {
                if (out != reinterpret_cast<void*>(0x1)) finding("posix_memalign failed but wrote *out");
                if (bad ? rc != bad : rc != ENOMEM) finding("posix_memalign wrong error", rc, align);
                if (!bad && !may_fail(n, align)) finding("posix_memalign failed", n, align);
                return;
            }
            break;
        }
        case 3: align = 4096; p = valloc(n); break;
        default:
            align = 4096;
            p = pvalloc(n);
            if (p && n <= PTRDIFF_MAX - 4096) n = (n + 4095) / 4096 * 4096 + (n == 0 ? 4096 : 0);
            break;
    }
    if (!p) return failed(may_fail(n, align) ? SIZE_MAX : n, bad ? bad : ENOMEM);
    if (bad) finding("aligned allocation with a bad alignment succeeded", align, n);
    if (must_fail(n, align)) finding("aligned allocation of an impossible size succeeded", n);
    adopt(i, p, n, align, Kind::malloc);
}

void do_new(unsigned i, Reader& r) {
    release(i);
    std::uint8_t which = r.byte() % 3;
    std::size_t n = read_size(r);
    if (n > (std::size_t{1} << 30)) n %= 4096;  // a huge new only throws: nothing to check
    std::size_t align = std::size_t{32} << (r.byte() % 8);
    void* p = nullptr;
    try {
        if (which == 0) p = ::operator new(n);
        else if (which == 1) p = ::operator new[](n);
        else p = ::operator new(n, std::align_val_t(align));
    } catch (const std::bad_alloc&) {
        if (!g_may_fail) finding("operator new threw on a chain that cannot refuse", n);
        return;
    }
    static constexpr Kind kKinds[] = {Kind::new_scalar, Kind::new_array, Kind::new_aligned};
    adopt(i, p, n, which == 2 ? align : kMinAlign, kKinds[which]);
}

// A block glibc made without us (as a library bound to glibc would): free, realloc and
// malloc_usable_size must still send it to glibc.
void do_foreign(unsigned i, Reader& r) {
    release(i);
    std::size_t n = read_size(r) % (1u << 20);
    void* p = __libc_malloc(n);
    if (p) adopt(i, p, n, kMinAlign, Kind::malloc);
}

void do_usable(unsigned i) {
    Slot& s = g_slots[i];
    if (s.p && malloc_usable_size(s.p) != s.usable) finding("malloc_usable_size changed", s.n);
    if (malloc_usable_size(nullptr) != 0) finding("malloc_usable_size(NULL) != 0");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // The chain as the preload understood it (the same parser, the same variables).
    static chainalloc::config::ChainSpec spec;
    chainalloc::config::Diagnostic diag;
    chainalloc::config::load([](const char* name) -> const char* { return std::getenv(name); },
                             spec, diag);
    g_may_fail = spec.layers[spec.layer_count - 1].kind == chainalloc::config::LayerKind::null;
    std::fprintf(stderr, "fuzz_alloc: chain ends in %s\n",
                 chainalloc::config::layer_name(spec.layers[spec.layer_count - 1].kind));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    g_input = data;
    g_input_size = size;
    Reader r{data, size};
    while (r.more()) {
        std::uint8_t op = r.byte();
        unsigned i = r.byte() % kSlots;
        switch (op % 10) {
            case 0: do_malloc(i, r); break;
            case 1: do_calloc(i, r); break;
            case 2: do_realloc(i, r, false); break;
            case 3: do_realloc(i, r, true); break;
            case 4: release(i); break;
            case 5: do_aligned(i, r); break;
            case 6: do_new(i, r); break;
            case 7: do_usable(i); break;
            case 8: for (unsigned k = 0; k < kSlots; ++k) release(k); break;
            case 9: do_foreign(i, r); break;
        }
    }
    for (unsigned k = 0; k < kSlots; ++k) release(k);  // each input starts from an empty table
    return 0;
}
