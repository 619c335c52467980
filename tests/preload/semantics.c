// The malloc family's contract (glibc 2.36, plus the stricter points docs/DESIGN.md §4 makes ours),
// checked on whatever allocator the process runs with: glibc, or one given by LD_PRELOAD.
// Prints one line per failed check, then "N passed, M failed"; exits 0 only if none failed.
//
// Build with -fno-builtin (meson does): otherwise GCC may fold malloc/free pairs away and
// the calls under test never happen.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

// The sizes that must fail on purpose; GCC rightly warns about them.
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"

static const size_t kHuge[] = {
    (size_t)1 << 60,          // fits in ptrdiff_t, but no address space holds it
    PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX + 1,  // glibc refuses anything above PTRDIFF_MAX outright
    SIZE_MAX / 2 + 17,
    SIZE_MAX - 10,
    SIZE_MAX,
};
enum { kHugeCount = sizeof kHuge / sizeof kHuge[0] };

static size_t page_size;

static bool aligned(const void* p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static void test_malloc_zero(void) {
    enum { N = 64 };
    void* p[N];
    for (int i = 0; i < N; ++i) {
        p[i] = malloc(0);
        CHECK(p[i] != NULL, "malloc(0) #%d returned NULL", i);
        CHECK(aligned(p[i], 16), "malloc(0) #%d = %p not 16-byte aligned", i, p[i]);
    }
    for (int i = 0; i < N; ++i)
        for (int j = i + 1; j < N; ++j)
            if (p[i] && p[i] == p[j]) CHECK(0, "malloc(0) gave %p twice (#%d, #%d)", p[i], i, j);
    for (int i = 0; i < N; ++i) free(p[i]);
    void* q = realloc(NULL, 0);
    CHECK(q != NULL, "realloc(NULL, 0) returned NULL (should act as malloc(0))");
    free(q);
}

static void test_free_null(void) {
    errno = 77;
    free(NULL);
    CHECK(errno == 77, "free(NULL) changed errno to %d", errno);
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu, want 0",
          malloc_usable_size(NULL));
}

static void test_realloc_basics(void) {
    char* p = realloc(NULL, 100);
    CHECK(p != NULL, "realloc(NULL, 100) returned NULL");
    if (!p) return;
    CHECK(malloc_usable_size(p) >= 100, "realloc(NULL, 100) usable size %zu",
          malloc_usable_size(p));
    pattern_fill(p, 100, 1);
    void* z = realloc(p, 0);  // glibc: frees p, returns NULL
    CHECK(z == NULL, "realloc(p, 0) returned %p, want NULL (p freed)", z);
    free(z);

    // A failed realloc leaves the old block alone and usable: a small block, and one past the
    // freelist's classes (the terminal's own: glibc's, or jemalloc's resize-or-move path).
    for (int h = 0; h < 2 * kHugeCount; ++h) {
        size_t n = h < kHugeCount ? 1000 : 100000;
        char* b = malloc(n);
        if (!CHECK(b != NULL, "malloc(%zu) returned NULL", n)) continue;
        pattern_fill(b, n, 2 + h);
        errno = 0;
        void* r = realloc(b, kHuge[h % kHugeCount]);
        CHECK(r == NULL, "realloc(p, %zu) returned %p, want NULL", kHuge[h % kHugeCount], r);
        CHECK(errno == ENOMEM, "realloc(p, %zu): errno %d, want ENOMEM", kHuge[h % kHugeCount], errno);
        if (r) {
            free(r);
            continue;
        }
        CHECK(pattern_ok(b, n, 2 + h), "realloc(p, %zu) failed but changed the old block",
              kHuge[h % kHugeCount]);
        char* g = realloc(b, 4 * n);  // still a live block: it can grow and be freed
        if (CHECK(g != NULL, "realloc after a failed realloc returned NULL")) {
            CHECK(pattern_ok(g, n, 2 + h), "realloc after failed realloc lost contents");
            b = g;
        }
        free(b);
    }
}

static void test_huge_requests(void) {
    for (int h = 0; h < kHugeCount; ++h) {
        size_t n = kHuge[h];
        errno = 0;
        void* p = malloc(n);
        CHECK(p == NULL && errno == ENOMEM, "malloc(%zu) = %p errno %d, want NULL/ENOMEM", n, p,
              errno);
        free(p);

        errno = 0;
        p = calloc(1, n);
        CHECK(p == NULL && errno == ENOMEM, "calloc(1, %zu) = %p errno %d, want NULL/ENOMEM", n,
              p, errno);
        free(p);

        errno = 0;
        p = aligned_alloc(64, n);
        CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(64, %zu) = %p errno %d, want ENOMEM",
              n, p, errno);
        free(p);

        errno = 0;
        p = memalign(4096, n);
        CHECK(p == NULL && errno == ENOMEM, "memalign(4096, %zu) = %p errno %d, want ENOMEM", n,
              p, errno);
        free(p);

        void* q = (void*)&q;
        int rc = posix_memalign(&q, 64, n);
        CHECK(rc == ENOMEM, "posix_memalign(64, %zu) returned %d, want ENOMEM", n, rc);
        if (rc == 0) free(q);

        errno = 0;
        p = valloc(n);
        CHECK(p == NULL && errno == ENOMEM, "valloc(%zu) = %p errno %d, want NULL/ENOMEM", n, p,
              errno);
        free(p);
    }
}

static void test_overflow(void) {
    static const size_t pairs[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX / 3 + 1, 3}, {(size_t)1 << 63, 16},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; ++i) {
        size_t a = pairs[i][0], b = pairs[i][1];
        errno = 0;
        void* p = calloc(a, b);
        CHECK(p == NULL && errno == ENOMEM, "calloc(%zu, %zu) = %p errno %d, want NULL/ENOMEM",
              a, b, p, errno);
        free(p);

        errno = 0;
        p = reallocarray(NULL, a, b);
        CHECK(p == NULL && errno == ENOMEM,
              "reallocarray(NULL, %zu, %zu) = %p errno %d, want NULL/ENOMEM", a, b, p, errno);
        free(p);

        char* old = malloc(64);
        if (!CHECK(old != NULL, "malloc(64) returned NULL")) continue;
        pattern_fill(old, 64, 40 + i);
        errno = 0;
        p = reallocarray(old, a, b);
        CHECK(p == NULL && errno == ENOMEM,
              "reallocarray(p, %zu, %zu) = %p errno %d, want NULL/ENOMEM", a, b, p, errno);
        CHECK(p != NULL || pattern_ok(old, 64, 40 + i),
              "failed reallocarray changed the old block");
        free(p ? p : old);
    }
    // reallocarray without overflow is realloc.
    int* v = reallocarray(NULL, 10, sizeof(int));
    if (CHECK(v != NULL, "reallocarray(NULL, 10, 4) returned NULL")) {
        for (int i = 0; i < 10; ++i) v[i] = i * 7;
        int* w = reallocarray(v, 1000, sizeof(int));
        if (CHECK(w != NULL, "reallocarray(p, 1000, 4) returned NULL")) {
            bool same = true;
            for (int i = 0; i < 10; ++i) same = same && w[i] == i * 7;
            CHECK(same, "reallocarray lost contents when growing");
            v = w;
        }
        free(v);
    }
}

// calloc must zero even when the allocator hands back a block that was freed dirty.
static void test_calloc_zeroes(void) {
    static const size_t sizes[] = {1, 8, 16, 24, 100, 256, 1000, 4096, 4097, 40000, 300000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s];
        int dirty = 0;
        for (int round = 0; round < 200; ++round) {
            unsigned char* p = calloc(1, n);
            if (!CHECK(p != NULL, "calloc(1, %zu) returned NULL", n)) break;
            size_t usable = malloc_usable_size(p);
            CHECK(usable >= n, "calloc(1, %zu) usable size %zu too small", n, usable);
            for (size_t i = 0; i < n; ++i)
                if (p[i]) {
                    dirty = 1;
                    break;
                }
            memset(p, 0xA5, usable);  // dirty it for the next round
            free(p);
            // The same size through malloc, dirtied too, so a recycled block is likely.
            unsigned char* q = malloc(n);
            if (q) memset(q, 0x5A, malloc_usable_size(q));
            free(q);
        }
        CHECK(!dirty, "calloc(1, %zu) returned non-zero bytes after a dirty free", n);
        unsigned char* m = calloc(n, 3);
        if (CHECK(m != NULL, "calloc(%zu, 3) returned NULL", n)) {
            bool zero = true;
            for (size_t i = 0; i < 3 * n; ++i) zero = zero && m[i] == 0;
            CHECK(zero, "calloc(%zu, 3) not zeroed", n);
            free(m);
        }
    }
    void* z = calloc(0, 0);
    CHECK(z != NULL, "calloc(0, 0) returned NULL (glibc gives a unique pointer)");
    free(z);
}

static void test_free_keeps_errno(void) {
    static const size_t sizes[] = {0, 1, 16, 100, 1024, 5000, 70000, 200000, 2 << 20};
    void* p[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) p[i] = malloc(sizes[i]);
    void* a = aligned_alloc(4096, 8192);
    void* c = calloc(100, 100);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        errno = 1234;
        free(p[i]);
        CHECK(errno == 1234, "free(malloc(%zu)) changed errno to %d", sizes[i], errno);
    }
    errno = 1234;
    free(a);
    CHECK(errno == 1234, "free(aligned_alloc block) changed errno to %d", errno);
    errno = 1234;
    free(c);
    CHECK(errno == 1234, "free(calloc block) changed errno to %d", errno);
}

static void test_malloc_alignment(void) {
    int bad = 0;
    size_t first_bad = 0;
    void* first_ptr = NULL;
    for (size_t n = 1; n <= 5000; ++n) {
        void* p = malloc(n);
        if (!p || !aligned(p, 16)) {
            if (!bad++) first_bad = n, first_ptr = p;
        }
        free(p);
    }
    CHECK(bad == 0, "%d of malloc(1..5000) not 16-byte aligned or NULL (first: %zu -> %p)", bad,
          first_bad, first_ptr);
    static const size_t big[] = {8191, 65536, 100000, 131073, 1 << 20, (3 << 20) + 5, 16 << 20};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; ++i) {
        void* p = malloc(big[i]);
        CHECK(p && aligned(p, 16), "malloc(%zu) = %p, want 16-byte aligned", big[i], p);
        free(p);
    }
    // Keep many alive at once too: a bump region would show misalignment only then.
    enum { N = 1000 };
    void* keep[N];
    bad = 0;
    for (int i = 0; i < N; ++i) {
        keep[i] = malloc((size_t)(i % 97) + 1);
        if (!keep[i] || !aligned(keep[i], 16)) ++bad;
    }
    for (int i = 0; i < N; ++i) free(keep[i]);
    CHECK(bad == 0, "%d of %d live small blocks not 16-byte aligned", bad, N);
}

static void check_block(const char* what, void* p, size_t align, size_t n) {
    if (!CHECK(p != NULL, "%s(%zu, %zu) returned NULL", what, align, n)) return;
    CHECK(aligned(p, align), "%s(%zu, %zu) = %p not aligned", what, align, n, p);
    size_t usable = malloc_usable_size(p);
    CHECK(usable >= n, "%s(%zu, %zu) usable size %zu too small", what, align, n, usable);
    pattern_fill(p, n, align + n);
    CHECK(pattern_ok(p, n, align + n), "%s(%zu, %zu) block not writable", what, align, n);
}

static void test_posix_memalign(void) {
    static const size_t sizes[] = {1, 8, 100, 4096, 5000, 100000};
    for (size_t a = sizeof(void*); a <= 65536; a *= 2)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
            void* p = NULL;
            int rc = posix_memalign(&p, a, sizes[s]);
            CHECK(rc == 0, "posix_memalign(%zu, %zu) returned %d", a, sizes[s], rc);
            if (rc == 0) check_block("posix_memalign", p, a, sizes[s]);
            free(p);
        }
    static const size_t bad[] = {0, 3, 4, 12, 24, 48, 96, 65537};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        void* sentinel = (void*)0x1234;
        void* p = sentinel;
        int rc = posix_memalign(&p, bad[i], 64);
        CHECK(rc == EINVAL, "posix_memalign(&p, %zu, 64) returned %d, want EINVAL", bad[i], rc);
        CHECK(p == sentinel, "posix_memalign(&p, %zu, 64) failed but changed *memptr to %p",
              bad[i], p);
        if (rc == 0) free(p);
    }
    void* p = NULL;
    int rc = posix_memalign(&p, 64, 0);
    CHECK(rc == 0, "posix_memalign(64, 0) returned %d", rc);
    if (rc == 0) {
        CHECK(p == NULL || aligned(p, 64), "posix_memalign(64, 0) = %p not aligned", p);
        free(p);
    }
}

static void test_aligned_alloc_memalign(void) {
    static const size_t sizes[] = {1, 64, 1000, 4096, 70000};
    for (size_t a = 1; a <= 65536; a *= 2)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
            void* p = aligned_alloc(a, sizes[s]);
            check_block("aligned_alloc", p, a, sizes[s]);
            free(p);
            p = memalign(a, sizes[s]);
            check_block("memalign", p, a, sizes[s]);
            free(p);
        }
    // Size a multiple of the alignment, as C11 first required.
    for (size_t a = 16; a <= 65536; a *= 4) {
        void* p = aligned_alloc(a, 3 * a);
        check_block("aligned_alloc", p, a, 3 * a);
        free(p);
    }
    // glibc 2.36 rounds an alignment that is not a power of two up to the next one (0 and 1
    // act as malloc), and fails with EINVAL only when no power of two is that large.
    static const size_t odd[] = {0, 3, 24, 48, 100, 4097};
    const char* names[] = {"aligned_alloc", "memalign"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; ++i) {
        size_t a = odd[i];
        size_t up = 16;
        while (up < a) up *= 2;
        for (int f = 0; f < 2; ++f) {
            errno = 0;
            void* p = f == 0 ? aligned_alloc(a, 64) : memalign(a, 64);
            CHECK(p != NULL, "%s(%zu, 64) failed (errno %d); glibc rounds the alignment up", names[f], a, errno);
            check_block(names[f], p, up, 64);
            free(p);
        }
    }
    for (int f = 0; f < 2; ++f) {
        size_t a = SIZE_MAX / 2 + 2;  // above the largest power of two
        errno = 0;
        void* p = f == 0 ? aligned_alloc(a, 64) : memalign(a, 64);
        CHECK(p == NULL && errno == EINVAL, "%s(%zu, 64) = %p errno %d, want NULL/EINVAL", names[f], a, p, errno);
    }
}

static void test_valloc_pvalloc(void) {
    static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000, 300000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        size_t n = sizes[s];
        void* p = valloc(n);
        check_block("valloc", p, page_size, n);
        free(p);
        size_t rounded = (n + page_size - 1) / page_size * page_size;
        p = pvalloc(n);
        check_block("pvalloc", p, page_size, n);
        if (p) {
            CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu) usable size %zu < %zu", n,
                  malloc_usable_size(p), rounded);
            pattern_fill(p, rounded, 99);  // the whole rounded size is the caller's
            CHECK(pattern_ok(p, rounded, 99), "pvalloc(%zu) rounded size not writable", n);
        }
        free(p);
    }
}

// Every usable byte is the caller's: filling all of them must not touch the neighbours.
static void test_usable_size(void) {
    int small_usable = 0, clobbered = 0;
    for (size_t n = 1; n <= 70000; n = n < 600 ? n + 1 : n * 5 / 4) {
        unsigned char* blk[3];
        size_t us[3];
        for (int i = 0; i < 3; ++i) {
            blk[i] = malloc(n);
            us[i] = blk[i] ? malloc_usable_size(blk[i]) : 0;
            if (!blk[i] || us[i] < n) ++small_usable;
        }
        if (blk[0] && blk[1] && blk[2]) {
            pattern_fill(blk[0], us[0], n * 3);
            pattern_fill(blk[2], us[2], n * 3 + 2);
            pattern_fill(blk[1], us[1], n * 3 + 1);
            if (!pattern_ok(blk[0], us[0], n * 3) || !pattern_ok(blk[1], us[1], n * 3 + 1) ||
                !pattern_ok(blk[2], us[2], n * 3 + 2)) {
                if (!clobbered++)
                    CHECK(0, "writing malloc_usable_size bytes of malloc(%zu) hit a neighbour", n);
            }
        }
        for (int i = 0; i < 3; ++i) free(blk[i]);
    }
    CHECK(small_usable == 0, "%d blocks with malloc_usable_size < request (or NULL)",
          small_usable);
    CHECK(clobbered == 0, "%d sizes where usable bytes overlapped a neighbour", clobbered);

    // The same for calloc, realloc and aligned blocks.
    void* c = calloc(7, 13);
    CHECK(c && malloc_usable_size(c) >= 91, "calloc(7, 13) usable size too small");
    void* r = realloc(c, 3000);
    CHECK(r && malloc_usable_size(r) >= 3000, "realloc(p, 3000) usable size too small");
    free(r ? r : c);
}

// Growing and shrinking keeps the common prefix, across small/large boundaries.
static void test_realloc_contents(void) {
    size_t sizes[64];
    int count = 0;
    for (size_t n = 16; n <= (1 << 20) && count < 64; n = n * 3 / 2 + 1) sizes[count++] = n;
    uint64_t seed = 1000;
    // Up the ladder, then down it, then jumps across it.
    char* p = malloc(sizes[0]);
    size_t cur = sizes[0];
    if (!CHECK(p != NULL, "malloc(16) returned NULL")) return;
    pattern_fill(p, cur, seed);
    int order[192], n_order = 0;
    for (int i = 1; i < count; ++i) order[n_order++] = i;
    for (int i = count - 2; i >= 0; --i) order[n_order++] = i;
    for (int i = 0; i < count; ++i) order[n_order++] = (i * 7) % count;
    for (int k = 0; k < n_order; ++k) {
        size_t want = sizes[order[k]];
        char* q = realloc(p, want);
        if (!CHECK(q != NULL, "realloc(p, %zu) returned NULL", want)) break;
        size_t kept = cur < want ? cur : want;
        size_t bad = pattern_mismatch(q, kept, seed);
        CHECK(bad == kept, "realloc %zu -> %zu lost byte %zu", cur, want, bad);
        CHECK(aligned(q, 16), "realloc(p, %zu) = %p not 16-byte aligned", want, q);
        CHECK(malloc_usable_size(q) >= want, "realloc(p, %zu) usable size %zu", want,
              malloc_usable_size(q));
        p = q;
        cur = want;
        pattern_fill(p, cur, ++seed);
    }
    free(p);

    // realloc of aligned blocks keeps contents too (the new block need only be 16-aligned).
    void* a = aligned_alloc(4096, 100);
    if (CHECK(a != NULL, "aligned_alloc(4096, 100) returned NULL")) {
        pattern_fill(a, 100, 5);
        char* b = realloc(a, 100000);
        if (CHECK(b != NULL, "realloc of an aligned block returned NULL")) {
            CHECK(pattern_ok(b, 100, 5), "realloc of an aligned block lost contents");
            a = b;
        }
        free(a);
    }
}

typedef void (*free_sized_fn)(void*, size_t);
typedef void (*free_aligned_sized_fn)(void*, size_t, size_t);

// C23's sized frees: glibc 2.36 lacks them, so test only where the allocator exports them.
static void test_sized_frees(void) {
    free_sized_fn fs = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
    free_aligned_sized_fn fas = (free_aligned_sized_fn)dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (fs) {
        fs(NULL, 0);
        fs(NULL, 123);
        for (size_t n = 0; n <= 300000; n = n < 1024 ? n + 7 : n * 2) {
            void* p = malloc(n);
            if (!CHECK(p != NULL, "malloc(%zu) returned NULL", n)) continue;
            pattern_fill(p, n, n);
            errno = 4321;
            fs(p, n);
            CHECK(errno == 4321, "free_sized(p, %zu) changed errno to %d", n, errno);
            void* c = calloc(n + 1, 3);
            if (CHECK(c != NULL, "calloc(%zu, 3) returned NULL", n + 1)) fs(c, (n + 1) * 3);
        }
        // A block grown by realloc is freed with its latest size.
        void* r = malloc(10);
        void* g = r ? realloc(r, 5000) : NULL;
        if (CHECK(g != NULL, "realloc(p, 5000) returned NULL")) fs(g, 5000);
    }
    if (fas) {
        fas(NULL, 64, 0);
        for (size_t a = 16; a <= 65536; a *= 4)
            for (size_t n = 1; n <= 100000; n *= 10) {
                void* p = aligned_alloc(a, n);
                if (!CHECK(p != NULL, "aligned_alloc(%zu, %zu) returned NULL", a, n)) continue;
                errno = 4321;
                fas(p, a, n);
                CHECK(errno == 4321, "free_aligned_sized changed errno to %d", errno);
                void* q = NULL;
                if (posix_memalign(&q, a, n) == 0) fas(q, a, n);
            }
    }
    // Whatever ran above, the heap must still be sound.
    void* after[32];
    for (int i = 0; i < 32; ++i) {
        after[i] = malloc((size_t)i * 100 + 1);
        if (after[i]) pattern_fill(after[i], (size_t)i * 100 + 1, (uint64_t)i);
    }
    int bad = 0;
    for (int i = 0; i < 32; ++i) {
        if (!after[i] || !pattern_ok(after[i], (size_t)i * 100 + 1, (uint64_t)i)) ++bad;
        free(after[i]);
    }
    CHECK(bad == 0, "heap unsound after sized frees (%d bad blocks)", bad);
}

// Many live blocks of mixed sizes, reallocated and freed in random order, each with its own
// pattern: a block handed out twice or written past its end shows up here.
static void test_interleaved(void) {
    enum { SLOTS = 2048, OPS = 200000 };
    static struct {
        unsigned char* p;
        size_t n;
        uint64_t seed;
    } slot[SLOTS];
    uint64_t rng = 0x1234567;
    uint64_t next_seed = 1;
    int corrupt = 0, null = 0, misaligned = 0;
    for (int op = 0; op < OPS; ++op) {
        int i = (int)rng_below(&rng, SLOTS);
        size_t r = rng_below(&rng, 1000);
        size_t n = r < 700 ? rng_below(&rng, 256) : r < 950 ? rng_below(&rng, 4096)
                 : r < 995 ? rng_below(&rng, 65536) : rng_below(&rng, 1 << 20);
        if (slot[i].p && !pattern_ok(slot[i].p, slot[i].n, slot[i].seed)) {
            if (!corrupt++) CHECK(0, "block of %zu bytes corrupted (op %d)", slot[i].n, op);
        }
        unsigned char* p;
        if (!slot[i].p) {
            int how = (int)rng_below(&rng, 4);
            p = how == 0 ? calloc(1, n) : how == 1 ? aligned_alloc(64, n) : malloc(n);
        } else if (rng_below(&rng, 3) == 0) {
            free(slot[i].p);
            slot[i].p = NULL;
            continue;
        } else {
            p = realloc(slot[i].p, n);
            if (p) {
                size_t kept = slot[i].n < n ? slot[i].n : n;
                if (!pattern_ok(p, kept, slot[i].seed) && !corrupt++)
                    CHECK(0, "realloc %zu -> %zu lost contents (op %d)", slot[i].n, n, op);
            } else if (n == 0) {
                slot[i].p = NULL;  // realloc(p, 0) freed it
                continue;
            }
        }
        if (!p) {
            ++null;
            continue;
        }
        if (!aligned(p, 16)) ++misaligned;
        slot[i].p = p;
        slot[i].n = n;
        slot[i].seed = next_seed++;
        pattern_fill(p, n, slot[i].seed);
    }
    for (int i = 0; i < SLOTS; ++i) {
        if (slot[i].p && !pattern_ok(slot[i].p, slot[i].n, slot[i].seed)) ++corrupt;
        free(slot[i].p);
    }
    CHECK(corrupt == 0, "%d corrupted blocks among interleaved allocations", corrupt);
    CHECK(null == 0, "%d interleaved allocations returned NULL", null);
    CHECK(misaligned == 0, "%d interleaved allocations not 16-byte aligned", misaligned);
}

int main(void) {
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    test_malloc_zero();
    test_free_null();
    test_realloc_basics();
    test_huge_requests();
    test_overflow();
    test_calloc_zeroes();
    test_free_keeps_errno();
    test_malloc_alignment();
    test_posix_memalign();
    test_aligned_alloc_memalign();
    test_valloc_pvalloc();
    test_usable_size();
    test_realloc_contents();
    test_sized_frees();
    test_interleaved();
    return check_finish();
}
