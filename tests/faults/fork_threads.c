// fork() while other threads allocate, and the child allocates: the everyday fork-safety
// pattern (glibc's tst-mallocfork itself, a fork from the handler of a signal sent by a new
// child, is fork_notify.c). The child inherits the allocator as it was at the instant of fork: any lock
// another thread held then is held forever in the child, and any list it was halfway through
// changing stays half-changed. An allocator's fork handlers must make that instant a quiet
// one. Each child checks the blocks it inherited from the forking thread, allocates a few
// hundred blocks of many sizes (the forking thread allocates little, so its caches are near
// empty and most of these come from the central lists the other threads were using),
// reallocates, frees, starts a thread that allocates too, and exits 0 only if every block held
// its contents.
// Usage: fork_threads [FORKS] [THREADS]   (defaults 200 and 2)
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"

static volatile int stop;

// Mostly thread-cache sizes, some of the freelist's larger classes, a few past them.
static size_t pick_size(uint64_t* rng) {
    size_t r = fault_below(rng, 100);
    if (r < 85) return 1 + fault_below(rng, 512);
    if (r < 98) return 513 + fault_below(rng, 32768);
    return 32768 + fault_below(rng, 100000);
}

// Blocks carry a byte pattern tied to their slot, so a block handed out twice, or one the
// child got from a list another thread was changing, shows up as wrong contents.
static void fill(unsigned char* p, size_t n, unsigned tag) {
    size_t step = n > 64 ? n / 64 : 1;
    for (size_t i = 0; i + 1 < n; i += step) p[i] = (unsigned char)(tag + i);
    p[n - 1] = (unsigned char)tag;
}

static int intact(const unsigned char* p, size_t n, unsigned tag) {
    size_t step = n > 64 ? n / 64 : 1;
    for (size_t i = 0; i + 1 < n; i += step)
        if (p[i] != (unsigned char)(tag + i)) return 0;
    return p[n - 1] == (unsigned char)tag;
}

struct block {
    unsigned char* p;
    size_t n;
};

static void* churn_thread(void* arg) {
    uint64_t rng = 0x1234 + (uintptr_t)arg;
    enum { SLOTS = 128 };
    struct block b[SLOTS] = {{0}};
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        unsigned i = (unsigned)fault_below(&rng, SLOTS);
        if (b[i].p && !intact(b[i].p, b[i].n, i)) abort();
        size_t n = pick_size(&rng);
        unsigned char* p = fault_below(&rng, 4) == 0 && b[i].p ? realloc(b[i].p, n) : NULL;
        if (!p) {
            free(b[i].p);
            p = malloc(n);
        }
        if (!p) abort();
        b[i].p = p;
        b[i].n = n;
        fill(p, n, i);
    }
    for (unsigned i = 0; i < SLOTS; ++i) free(b[i].p);
    return NULL;
}

// The forking thread's own blocks, inherited by every child.
enum { MINE = 64 };
static struct block mine[MINE];

static void* child_thread(void* arg) {
    (void)arg;
    for (unsigned i = 0; i < 300; ++i) free(malloc(1 + i % 700));
    return (void*)1;
}

static void child_work(unsigned seed) {
    watchdog_child(3);
    for (unsigned i = 0; i < MINE; ++i)
        if (!intact(mine[i].p, mine[i].n, i)) _exit(4);
    uint64_t rng = seed;
    enum { MANY = 120 };
    static struct block b[MANY];
    for (unsigned i = 0; i < MANY; ++i) {
        b[i].n = pick_size(&rng);
        b[i].p = malloc(b[i].n);
        if (!b[i].p) _exit(2);
        fill(b[i].p, b[i].n, i);
    }
    for (unsigned i = 0; i < MANY; i += 3) {
        size_t n = pick_size(&rng);
        unsigned char* p = realloc(b[i].p, n);
        if (!p) _exit(2);
        size_t keep = n < b[i].n ? n : b[i].n;
        if (keep == b[i].n && !intact(p, keep, i)) _exit(4);
        b[i].p = p;
        b[i].n = n;
        fill(p, n, i);
    }
    for (unsigned i = 0; i < MANY; ++i) {
        if (!intact(b[i].p, b[i].n, i)) _exit(4);
        free(b[i].p);
    }
    for (unsigned i = 0; i < MINE; ++i) free(mine[i].p);
    pthread_t t;
    void* ok = NULL;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &ok) != 0 || !ok)
        _exit(5);
    _exit(0);
}

int main(int argc, char** argv) {
    int target = argc > 1 ? atoi(argv[1]) : 200;
    int n_threads = argc > 2 ? atoi(argv[2]) : 2;
    if (n_threads < 1 || n_threads > 64) n_threads = 2;
    watchdog_start("fork_threads", "forks", 5);

    uint64_t rng = 42;
    for (unsigned i = 0; i < MINE; ++i) {
        mine[i].n = pick_size(&rng);
        mine[i].p = malloc(mine[i].n);
        if (!mine[i].p) abort();
        fill(mine[i].p, mine[i].n, i);
    }

    pthread_t threads[64];
    for (int i = 0; i < n_threads; ++i)
        if (pthread_create(&threads[i], NULL, churn_thread, (void*)(uintptr_t)i) != 0) {
            perror("fork_threads: pthread_create");
            return 1;
        }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int failures = 0;
    fault_where = "fork() while the other threads allocate";
    for (int k = 0; k < target; ++k) {
        // The forking thread allocates between forks too, so its cache is never quiet.
        unsigned i = (unsigned)fault_below(&rng, MINE);
        free(mine[i].p);
        mine[i].n = pick_size(&rng);
        mine[i].p = malloc(mine[i].n);
        if (!mine[i].p) abort();
        fill(mine[i].p, mine[i].n, i);

        pid_t pid = fork();
        if (pid == 0) child_work((unsigned)k + 1);
        if (pid < 0 || !fault_reap(pid)) ++failures;
        fault_progress = k + 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fault_where = "joining the allocating threads";
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < n_threads; ++i) pthread_join(threads[i], NULL);
    alarm(0);
    for (unsigned i = 0; i < MINE; ++i) free(mine[i].p);

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fork_threads: %d forks while %d threads allocate, in %.2f s, %d failed "
           "(child status 4: corrupt block, 5: no thread)\n",
           target, n_threads, secs, failures);
    return failures == 0 ? 0 : 1;
}
