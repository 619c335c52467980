// The cap at every size: a `freelist(max=N)` layer caps the bytes the program holds from it
// and from everything it serves. Requests above its largest class are served by the layer
// itself (one mapping per block, whole 64 KiB multiples) and counted against max= too, so
// neither a chain ending in null nor one ending in glibc's malloc can pass the cap with large
// blocks. What counts is what the program holds: the usable size of each block it was handed.
// Past the cap malloc, calloc and realloc return NULL with errno ENOMEM, the program keeps
// running, and freeing makes room again.
//
// Usage: cap_sizes [MiB] (the cap, default 64). Run under `freelist(max=64M) > null`,
// `freelist(max=64M) > system` and the capped preset (meson.build).
#include "check.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MiB ((size_t)1 << 20)

// The process allocates a little before main (stdio, the loader): it counts against the cap.
#define kSlack MiB

static size_t cap;
static size_t max_blocks;
static void** blocks;  // mmap'ed: the bookkeeping must not count against the cap itself

static void free_all(size_t n) {
    for (size_t i = 0; i < n; ++i) free(blocks[i]);
}

struct fill_result {
    size_t count;   // blocks obtained
    size_t held;    // sum of their usable sizes
    size_t failed;  // size of the request that failed (0: none did)
};

// Allocates sizes[i % nsizes] and memsets each block until a request fails, or the blocks
// held pass cap + 32 MiB (no cap at all: stop before the machine runs out). A failure must
// come with ENOMEM, and calloc of the same size must fail the same way while the cap is full.
static struct fill_result fill(const size_t* sizes, size_t nsizes, const char* what) {
    struct fill_result r = {0, 0, 0};
    while (r.count < max_blocks && r.held <= cap + 32 * MiB) {
        size_t n = sizes[r.count % nsizes];
        errno = 0;
        void* p = malloc(n);
        if (!p) {
            r.failed = n;
            CHECK(errno == ENOMEM, "%s: malloc(%zu) failed with errno %d, want ENOMEM", what, n, errno);
            errno = 0;
            void* q = calloc(1, n);
            CHECK(q == NULL && errno == ENOMEM, "%s: calloc(1, %zu) at the cap: %p, errno %d", what, n, q, errno);
            free(q);
            break;
        }
        memset(p, 0x5a, n);  // really usable, not just reserved
        blocks[r.count++] = p;
        r.held += malloc_usable_size(p);
    }
    printf("%s: %zu blocks, %zu KiB held (usable), cap %zu KiB, failed request %zu KiB\n", what,
        r.count, r.held >> 10, cap >> 10, r.failed >> 10);
    CHECK(r.failed != 0, "%s: no request failed: %zu KiB held under a %zu KiB cap", what, r.held >> 10, cap >> 10);
    CHECK(r.held <= cap, "%s: %zu KiB held, past the %zu KiB cap", what, r.held >> 10, cap >> 10);
    return r;
}

// The lowest total the large fill may stop at: the next block (at most 16 MiB) didn't fit,
// plus 1 MiB as the brief allows for rounding, minus what the process holds from before main.
static size_t large_floor(void) {
    size_t below = 16 * MiB + MiB + kSlack;
    return cap > below ? cap - below : 0;
}

static const size_t large_sizes[] = {1 * MiB, 16 * MiB};

static void large_blocks(void) {
    struct fill_result first = fill(large_sizes, 2, "1M/16M");
    CHECK(first.held >= large_floor(), "1M/16M: %zu KiB held, want at least %zu KiB", first.held >> 10,
        large_floor() >> 10);
    free_all(first.count);

    // One request larger than the cap fails, though nothing is held.
    errno = 0;
    void* p = malloc(cap + MiB);
    CHECK(p == NULL && errno == ENOMEM, "malloc(cap + 1 MiB) with nothing held: %p, errno %d", p, errno);
    free(p);
    errno = 0;
    p = calloc(1, cap + MiB);
    CHECK(p == NULL && errno == ENOMEM, "calloc(1, cap + 1 MiB) with nothing held: %p, errno %d", p, errno);
    free(p);
    errno = 0;
    p = realloc(NULL, cap + MiB);
    CHECK(p == NULL && errno == ENOMEM, "realloc(NULL, cap + 1 MiB) with nothing held: %p, errno %d", p, errno);
    free(p);

    // Freeing gave the room back: the same sequence reaches the same total, give or take one
    // block.
    struct fill_result again = fill(large_sizes, 2, "1M/16M again");
    CHECK(again.held >= large_floor(), "1M/16M again: %zu KiB held, want at least %zu KiB",
        again.held >> 10, large_floor() >> 10);
    CHECK(again.count + 1 >= first.count && again.count <= first.count + 1,
        "1M/16M again: %zu blocks (%zu KiB), the first time %zu (%zu KiB)", again.count,
        again.held >> 10, first.count, first.held >> 10);
    free_all(again.count);
}

// Small blocks fill the cap up to its last MiB; freed, they make room for one large block.
static void small_blocks(void) {
    static const size_t small[] = {4096};
    struct fill_result r = fill(small, 1, "4K");
    CHECK(r.held + kSlack >= cap, "4K: %zu KiB held, want at least %zu KiB", r.held >> 10,
        cap > kSlack ? (cap - kSlack) >> 10 : 0);
    free_all(r.count);
    errno = 0;
    void* p = malloc(16 * MiB);
    if (CHECK(p != NULL, "malloc(16 MiB) after freeing the 4 KiB blocks: errno %d", errno)) memset(p, 1, 16 * MiB);
    free(p);
}

// realloc moves a block through the classes and above them, keeping its contents; one that
// would pass the cap returns NULL/ENOMEM and leaves the block as it was.
static void reallocs(void) {
    const uint64_t seed = 7;
    size_t size = MiB;
    unsigned char* p = malloc(size);
    if (!CHECK(p != NULL, "malloc(1 MiB): errno %d", errno)) return;
    pattern_fill(p, size, seed);
    static const size_t steps[] = {2 * MiB, 16 * MiB, 100};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; ++i) {
        size_t n = steps[i];
        errno = 0;
        unsigned char* q = realloc(p, n);
        if (!CHECK(q != NULL, "realloc %zu -> %zu under the cap: errno %d", size, n, errno)) continue;
        size_t kept = size < n ? size : n;
        CHECK(q[0] == pattern_byte(seed, 0) && q[kept - 1] == pattern_byte(seed, kept - 1),
            "realloc %zu -> %zu: first or last byte of the old contents lost", size, n);
        CHECK(pattern_ok(q, kept, seed), "realloc %zu -> %zu: contents differ at byte %zu", size, n,
            pattern_mismatch(q, kept, seed));
        p = q;
        size = n;
        pattern_fill(p, size, seed);
    }

    // Back to 1 MiB, then a realloc larger than the cap on its own.
    errno = 0;
    unsigned char* q = realloc(p, MiB);
    if (!CHECK(q != NULL, "realloc %zu -> 1 MiB: errno %d", size, errno)) {
        free(p);
        return;
    }
    p = q;
    size = MiB;
    pattern_fill(p, size, seed);
    errno = 0;
    q = realloc(p, cap + MiB);
    CHECK(q == NULL && errno == ENOMEM, "realloc 1 MiB -> cap + 1 MiB: %p, errno %d", (void*)q, errno);
    if (q) {
        p = q;  // it wrongly succeeded: the old block is gone, carry on with the new one
        size = MiB;
    } else {
        CHECK(pattern_ok(p, size, seed), "a failed realloc changed the block at byte %zu",
            pattern_mismatch(p, size, seed));
    }

    // A realloc that fits alone but not with what else is held: a filler of cap - 8 MiB, then
    // 1 MiB -> 16 MiB would hold cap + 8 MiB.
    if (cap >= 24 * MiB) {
        errno = 0;
        void* filler = malloc(cap - 8 * MiB);
        if (CHECK(filler != NULL, "filler of cap - 8 MiB: errno %d", errno)) {
            memset(filler, 3, cap - 8 * MiB);
            errno = 0;
            q = realloc(p, 16 * MiB);
            CHECK(q == NULL && errno == ENOMEM, "realloc 1 MiB -> 16 MiB next to a filler of cap - 8 MiB: %p, errno %d",
                (void*)q, errno);
            if (q) {
                p = q;
            } else {
                CHECK(pattern_ok(p, size, seed), "a failed realloc changed the block at byte %zu",
                    pattern_mismatch(p, size, seed));
            }
            free(filler);
            // With the filler gone the same realloc fits.
            errno = 0;
            q = realloc(p, 16 * MiB);
            if (CHECK(q != NULL, "realloc 1 MiB -> 16 MiB after freeing the filler: errno %d", errno)) {
                CHECK(pattern_ok(q, size, seed), "realloc 1 MiB -> 16 MiB: contents differ at byte %zu",
                    pattern_mismatch(q, size, seed));
                p = q;
            }
        }
    }
    free(p);
}

int main(int argc, char** argv) {
    long mib = argc > 1 ? atol(argv[1]) : 64;
    if (mib <= 0) {
        fprintf(stderr, "usage: %s [cap in MiB]\n", argv[0]);
        return 2;
    }
    cap = (size_t)mib * MiB;
    // Enough slots for 4 KiB blocks up to the fill's stop (cap + 32 MiB), and then some.
    max_blocks = (cap + 40 * MiB) / 4096;
    blocks = mmap(NULL, max_blocks * sizeof *blocks, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blocks == MAP_FAILED) {
        perror("mmap");
        return 2;
    }

    large_blocks();
    small_blocks();
    reallocs();

    check_still_running();
    return check_finish();
}
