// A program under a modest address-space limit (ulimit -v, a container's) must keep working:
// the allocator may not hold more address space than the program uses. Once started, the
// process sets RLIMIT_AS to 200 MiB in all; if it already maps more (an allocator that reserved
// large ranges up front), the call still succeeds but every new mapping fails, and so do
// thread stacks and large blocks. 200 MiB is far above what glibc needs here (the program, its
// libraries, thread stacks of 8 MiB and a few arenas) and far below any reservation of
// gigabytes (the free-list core of 2fe91e5 reserves 4 GiB per class, 160 GiB, at start; the
// jemalloc terminal's arenas 1 TiB). Then: 8 threads, two at a time (each mallocs and frees a
// few small blocks), 64 blocks of 256 B, a 1 MiB and an 8 MiB block, written and freed.
// Prints each failed step; exit 0 when all succeeded, else 1.
#include "check.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

enum { kThreads = 8, kSmall = 64 };
static const size_t kLimit = (size_t)200 << 20;

static void* work(void* arg) {
    (void)arg;
    for (int i = 0; i < 16; ++i) {
        void* p = malloc(16 + 24 * (size_t)i);
        if (!p) return (void*)1;
        memset(p, i, 16 + 24 * (size_t)i);
        free(p);
    }
    return NULL;
}

static size_t virtual_size(void) {
    unsigned long pages = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static int written(void* p, size_t n) {
    if (!p) return 0;
    memset(p, 0xc3, n);
    return ((unsigned char*)p)[n - 1] == 0xc3;
}

int main(void) {
    size_t vsize = virtual_size();
    printf("virtual size at start: %zu MiB, limit: %zu MiB\n", vsize >> 20, kLimit >> 20);
    struct rlimit rl;
    getrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = kLimit;
    if (!CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS, 200 MiB) failed")) return check_finish();

    // Two threads at a time: glibc itself gives each thread that finds the others' arenas busy
    // an arena of its own, reserving 64 MiB (128 MiB while it aligns it), so 8 at once can pass
    // 200 MiB on glibc alone (the baseline failed so, once in a loaded run). Joined threads
    // hand their arenas on.
    pthread_t threads[kThreads];
    for (int wave = 0; wave < kThreads; wave += 2) {
        int started = wave;
        for (int t = wave; t < wave + 2; ++t) {
            int rc = pthread_create(&threads[t], NULL, work, NULL);
            if (!CHECK(rc == 0, "pthread_create %d failed: %s", t, strerror(rc))) break;
            ++started;
        }
        for (int t = wave; t < started; ++t) {
            void* result = NULL;
            pthread_join(threads[t], &result);
            CHECK(result == NULL, "thread %d: a small malloc failed", t);
        }
    }

    void* small[kSmall];
    for (int i = 0; i < kSmall; ++i) {
        small[i] = malloc(256);
        CHECK(written(small[i], 256), "malloc(256) number %d failed", i);
    }
    void* mib = malloc(1 << 20);
    CHECK(written(mib, 1 << 20), "malloc(1 MiB) failed");
    void* mib8 = malloc(8 << 20);
    CHECK(written(mib8, 8 << 20), "malloc(8 MiB) failed");
    for (int i = 0; i < kSmall; ++i) free(small[i]);
    free(mib);
    free(mib8);
    return check_finish();
}
