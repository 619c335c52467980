// The cap with threads: a `freelist(max=N)` layer counts what the program holds (the usable
// size of every block handed out, at every size), never blocks idle in thread caches. So a
// thread can always fill the cap, whatever other threads (finished, or alive after freeing
// everything) left in their caches, and threads that hold little between them never see a
// request fail.
//
// Phase 1, in turn: 4 threads one after another, each filling the cap with a cycle of sizes
// (64 B .. 1 MiB), then freeing everything. First each thread is joined before the next
// starts; then none is: thread k frees, warms its cache and waits on a barrier while thread
// k+1 fills. Every thread must reach cap - 2 MiB.
// Phase 2, together: 4 threads allocate and free random sizes (16 B .. 2 MiB, log-uniform)
// for about a second, each holding at most cap/8, checking a pattern in every block; no
// request may fail while all threads together hold less than cap - 4 MiB. After they free
// everything (and stay alive), one of them fills the cap again to within 2 MiB.
//
// Usage: cap_threads [MiB] (the cap, default 64). Run under `freelist(max=64M) > null`.
#include "check.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
enum { kThreads = 4 };

static size_t cap;

static void* map_array(size_t bytes) {
    // Bookkeeping comes from mmap: it must not count against the cap itself.
    void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

// ---- Filling the cap ----

static const size_t cycle[] = {64, 4096, 32 << 10, 200 << 10, 1 << 20};
enum { kCycle = sizeof cycle / sizeof cycle[0] };

// Allocates the cycle of sizes, writing every block, until a request fails (or the blocks
// held pass cap + 16 MiB: no cap, stop); checks the failure and that at least cap - 2 MiB
// was reached; frees everything. Returns the bytes held at the peak.
static size_t fill_cap(const char* who) {
    size_t cycle_bytes = 0;
    for (int i = 0; i < kCycle; ++i) cycle_bytes += cycle[i];
    size_t limit = cap + 16 * MiB;
    size_t max_blocks = kCycle * (limit / cycle_bytes + 2);
    void** blocks = map_array(max_blocks * sizeof *blocks);
    size_t count = 0, held = 0, failed = 0;
    while (count < max_blocks && held <= limit) {
        size_t n = cycle[count % kCycle];
        errno = 0;
        void* p = malloc(n);
        if (!p) {
            failed = n;
            CHECK(errno == ENOMEM, "%s: malloc(%zu) failed with errno %d, want ENOMEM", who, n, errno);
            break;
        }
        memset(p, 0x3c, n);
        blocks[count++] = p;
        held += malloc_usable_size(p);
    }
    printf("%s: %zu blocks, %zu KiB held (usable), cap %zu KiB, failed request %zu B\n", who, count,
        held >> 10, cap >> 10, failed);
    fflush(stdout);
    CHECK(failed != 0, "%s: no request failed: %zu KiB held under a %zu KiB cap", who, held >> 10, cap >> 10);
    CHECK(held <= cap, "%s: %zu KiB held, past the %zu KiB cap", who, held >> 10, cap >> 10);
    CHECK(held + 2 * MiB >= cap, "%s: %zu KiB held, want at least %zu KiB (cap - 2 MiB)", who, held >> 10,
        cap > 2 * MiB ? (cap - 2 * MiB) >> 10 : 0);
    for (size_t i = 0; i < count; ++i) free(blocks[i]);
    munmap(blocks, max_blocks * sizeof *blocks);
    return held;
}

// Leaves blocks of every size up to 32 KiB idle in this thread's cache: allocate a batch of
// each, then free it. What the cache keeps is not held by the program and must not count.
static void warm_cache(void) {
    enum { kBatch = 64 };
    void* batch[kBatch];
    for (size_t n = 16; n <= (32 << 10); n += n < 256 ? 16 : n / 4) {
        size_t got = 0;
        for (; got < kBatch; ++got) {
            batch[got] = malloc(n);
            if (!batch[got]) break;
            memset(batch[got], 1, n);
        }
        for (size_t i = 0; i < got; ++i) free(batch[i]);
    }
}

// ---- Phase 1: in turn ----

struct turn {
    int index;
    int joined;  // 0: stay alive after the fill, until the barrier
    sem_t* done;
    pthread_barrier_t* barrier;
};

static void* turn_thread(void* arg) {
    struct turn* t = arg;
    char who[64];
    snprintf(who, sizeof who, "in turn, %s, thread %d", t->joined ? "joined" : "alive", t->index);
    fill_cap(who);
    if (!t->joined) {
        warm_cache();
        sem_post(t->done);
        pthread_barrier_wait(t->barrier);
    }
    return NULL;
}

static void in_turn(int joined) {
    pthread_t threads[kThreads];
    struct turn turns[kThreads];
    sem_t done;
    pthread_barrier_t barrier;
    sem_init(&done, 0, 0);
    pthread_barrier_init(&barrier, NULL, kThreads + 1);
    for (int k = 0; k < kThreads; ++k) {
        turns[k] = (struct turn){k, joined, &done, &barrier};
        if (!CHECK(pthread_create(&threads[k], NULL, turn_thread, &turns[k]) == 0, "pthread_create")) exit(1);
        if (joined) {
            pthread_join(threads[k], NULL);
        } else {
            while (sem_wait(&done) != 0) {}  // thread k has freed and is waiting, cache warm
        }
    }
    if (!joined) {
        pthread_barrier_wait(&barrier);
        for (int k = 0; k < kThreads; ++k) pthread_join(threads[k], NULL);
    }
    pthread_barrier_destroy(&barrier);
    sem_destroy(&done);
}

// ---- Phase 2: together ----

static size_t held_all;  // usable bytes all threads hold, updated atomically
static pthread_barrier_t together_barrier;

struct slot {
    void* p;
    size_t size;  // requested
    size_t usable;
    uint64_t seed;
};

// 16 B .. 2 MiB, log-uniform: a power of two from 16 to 1 MiB, then up to twice that.
static size_t random_size(uint64_t* rng) {
    size_t base = (size_t)16 << rng_below(rng, 17);
    return base + rng_below(rng, base);
}

static int release(struct slot* slots, size_t* count, size_t i, size_t* mine, const char* who) {
    struct slot s = slots[i];
    int ok = CHECK(pattern_ok(s.p, s.size, s.seed), "%s: block of %zu bytes changed at byte %zu", who, s.size,
        pattern_mismatch(s.p, s.size, s.seed));
    __atomic_fetch_sub(&held_all, s.usable, __ATOMIC_RELAXED);
    *mine -= s.usable;
    free(s.p);
    slots[i] = slots[--*count];
    return ok;
}

static void* together_thread(void* arg) {
    int index = (int)(intptr_t)arg;
    char who[32];
    snprintf(who, sizeof who, "together, thread %d", index);
    enum { kSlots = 4096 };
    struct slot* slots = map_array(kSlots * sizeof *slots);
    size_t count = 0, mine = 0, allocs = 0, failures = 0, bad = 0;
    size_t early = 0, first_n = 0, first_seen = 0, bad_errno = 0;  // failures below cap - 4 MiB
    const size_t budget = cap / 8;
    uint64_t rng = 0x1234567 + 977 * (uint64_t)index;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned long op = 0;; ++op) {
        if (op % 64 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            double t = (double)(now.tv_sec - start.tv_sec) + 1e-9 * (double)(now.tv_nsec - start.tv_nsec);
            if (t >= 1.0) break;
        }
        size_t n = random_size(&rng);
        if (count > 0 && (count == kSlots || mine + n > budget || rng_below(&rng, 2) == 0)) {
            if (!release(slots, &count, rng_below(&rng, count), &mine, who) && ++bad > 5) break;
            continue;
        }
        size_t before = __atomic_load_n(&held_all, __ATOMIC_RELAXED);
        errno = 0;
        void* p = malloc(n);
        if (!p) {
            int err = errno;
            size_t after = __atomic_load_n(&held_all, __ATOMIC_RELAXED);
            size_t seen = before > after ? before : after;  // the larger view: fewer false alarms
            ++failures;
            if (err != ENOMEM) ++bad_errno;
            if (seen + n + 4 * MiB < cap && early++ == 0) {  // the first one is described below
                first_n = n;
                first_seen = seen;
            }
            continue;
        }
        size_t usable = malloc_usable_size(p);
        __atomic_fetch_add(&held_all, usable, __ATOMIC_RELAXED);
        uint64_t seed = rng_next(&rng);
        pattern_fill(p, n, seed);
        slots[count++] = (struct slot){p, n, usable, seed};
        mine += usable;
        ++allocs;
    }
    while (count > 0) release(slots, &count, count - 1, &mine, who);
    printf("%s: %zu allocations, %zu failed\n", who, allocs, failures);
    fflush(stdout);
    CHECK(bad_errno == 0, "%s: %zu failed requests with an errno other than ENOMEM", who, bad_errno);
    CHECK(early == 0, "%s: %zu requests failed below cap - 4 MiB, the first malloc(%zu) with %zu KiB held by all threads (cap %zu KiB)",
        who, early, first_n, first_seen >> 10, cap >> 10);
    munmap(slots, kSlots * sizeof *slots);

    // Everyone has freed everything; the others stay alive, caches warm, while thread 0 fills.
    pthread_barrier_wait(&together_barrier);
    if (index == 0) fill_cap("together, after the frees, thread 0");
    pthread_barrier_wait(&together_barrier);
    return NULL;
}

static void together(void) {
    pthread_t threads[kThreads];
    pthread_barrier_init(&together_barrier, NULL, kThreads);
    for (int k = 0; k < kThreads; ++k)
        if (!CHECK(pthread_create(&threads[k], NULL, together_thread, (void*)(intptr_t)k) == 0, "pthread_create"))
            exit(1);
    for (int k = 0; k < kThreads; ++k) pthread_join(threads[k], NULL);
    pthread_barrier_destroy(&together_barrier);
    CHECK(__atomic_load_n(&held_all, __ATOMIC_RELAXED) == 0, "held count not back to 0");
}

int main(int argc, char** argv) {
    long mib = argc > 1 ? atol(argv[1]) : 64;
    if (mib <= 0) {
        fprintf(stderr, "usage: %s [cap in MiB]\n", argv[0]);
        return 2;
    }
    cap = (size_t)mib * MiB;
    setvbuf(stdout, NULL, _IOLBF, 0);

    in_turn(1);
    in_turn(0);
    together();

    check_still_running();
    return check_finish();
}
