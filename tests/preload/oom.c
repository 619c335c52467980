// Out of memory, wherever it happens in the chain, is NULL with errno ENOMEM for the caller:
// never a crash, a hang or an abort; and allocation works again once memory is freed.
//
// The process lowers its own RLIMIT_AS a little above what it maps now, so that new mappings
// fail (large blocks from glibc or jemalloc, a new window of the event log, a new thread's
// stack), while memory already reserved (a freelist's range) stays usable up to a cap when the
// chain has one. Then, in the main thread and in 4 threads at once: allocate blocks of every
// kind (malloc, calloc, realloc, aligned) until requests fail, check each failure, free
// everything, and check that the same requests succeed again. Run under several chains
// (meson.build), a logging one and a capped one included. With --may-not-fail, a chain whose
// memory was reserved up front need not fail at all; everything else still holds.
#include "check.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum { kMaxBlocks = 1 << 16, kThreads = 4 };

// A size from 16 bytes to 4 MiB, mostly small, some large.
static size_t size_for(unsigned i) {
    static const size_t sizes[] = {16, 48, 200, 1000, 4000, 30000, 100000, 1 << 20, 4 << 20};
    return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

// One of the family, chosen by i; NULL must come with errno ENOMEM.
static void* allocate(unsigned i, size_t n) {
    void* p = NULL;
    errno = 0;
    switch (i % 5) {
        case 0: p = malloc(n); break;
        case 1: p = calloc(1, n); break;
        case 2: p = realloc(NULL, n); break;
        case 3: p = aligned_alloc(64, n); break;
        case 4: {
            int rc = posix_memalign(&p, 4096, n);
            if (rc) {
                p = NULL;
                errno = rc;
            }
            break;
        }
    }
    if (!p) CHECK(errno == ENOMEM, "allocation of %zu bytes failed with errno %d, not ENOMEM", n, errno);
    return p;
}

// Fills memory until `budget` bytes are out or requests keep failing; returns the count of
// failures seen. Blocks are written (so they really exist) and grown by realloc now and then,
// where a failed realloc must leave the old block as it was.
static unsigned fill(void** blocks, unsigned* count, size_t budget) {
    size_t out = 0;
    unsigned failures = 0;
    for (unsigned i = 0; *count < kMaxBlocks && out < budget && failures < 200; ++i) {
        size_t n = size_for(i);
        void* p = allocate(i, n);
        if (!p) {
            ++failures;
            continue;
        }
        memset(p, 0xA5, n);
        if (i % 7 == 0) {
            errno = 0;
            void* q = realloc(p, n * 4);
            if (q) {
                p = q;
                n *= 4;
            } else {
                CHECK(errno == ENOMEM, "realloc to %zu failed with errno %d", n * 4, errno);
                CHECK(((unsigned char*)p)[n - 1] == 0xA5, "a failed realloc changed the block");
                ++failures;
            }
        }
        blocks[(*count)++] = p;
        out += n;
    }
    return failures;
}

static void empty(void** blocks, unsigned* count) {
    for (unsigned i = 0; i < *count; ++i) free(blocks[i]);
    *count = 0;
}

struct Worker {
    pthread_t thread;
    void* blocks[kMaxBlocks];
    unsigned count, failures;
};

static void* work(void* arg) {
    struct Worker* w = arg;
    w->failures = fill(w->blocks, &w->count, (size_t)256 << 20);
    return NULL;
}

// Lowers RLIMIT_AS to what the process maps now plus `headroom`.
static void limit_address_space(size_t headroom) {
    FILE* f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1) {
        CHECK(0, "cannot read /proc/self/statm");
        if (f) fclose(f);
        return;
    }
    fclose(f);
    struct rlimit rl = {.rlim_cur = pages * (size_t)sysconf(_SC_PAGESIZE) + headroom, .rlim_max = RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS) failed");
}

int main(int argc, char** argv) {
    bool must_fail = !(argc > 1 && !strcmp(argv[1], "--may-not-fail"));
    static struct Worker workers[kThreads];
    static void* blocks[kMaxBlocks];
    unsigned count = 0;

    limit_address_space((size_t)64 << 20);
    unsigned failures = fill(blocks, &count, (size_t)256 << 20);
    CHECK(failures > 0 || !must_fail, "no allocation failed under a 64 MiB address-space headroom");
    empty(blocks, &count);
    // Memory is back: small and large requests succeed again.
    for (unsigned i = 0; i < 40; ++i) {
        void* p = allocate(i, size_for(i) > (1 << 20) ? 1 << 20 : size_for(i));
        CHECK(p != NULL, "allocation %u failed after everything was freed", i);
        free(p);
    }

    // Threads, each filling memory at the same time; all failures are clean. The limit is
    // lifted while they start (their stacks need mappings) and lowered again at once.
    struct rlimit unlimited = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
    setrlimit(RLIMIT_AS, &unlimited);
    for (int t = 0; t < kThreads; ++t)
        CHECK(pthread_create(&workers[t].thread, NULL, work, &workers[t]) == 0, "pthread_create failed");
    // The workers race the limit: whatever they allocate before it counts against it.
    limit_address_space((size_t)96 << 20);
    unsigned total = 0;
    for (int t = 0; t < kThreads; ++t) {
        pthread_join(workers[t].thread, NULL);
        total += workers[t].failures;
    }
    CHECK(total > 0 || !must_fail, "no allocation failed in %d threads under the limit", kThreads);
    for (int t = 0; t < kThreads; ++t) empty(workers[t].blocks, &workers[t].count);
    for (unsigned i = 0; i < 40; ++i) {
        void* p = allocate(i, size_for(i) > (1 << 20) ? 1 << 20 : size_for(i));
        CHECK(p != NULL, "allocation %u failed after the threads freed everything", i);
        free(p);
    }
    return check_finish();
}
