// Blocks handed between two threads as fast as they can go, for test_end_to_end.py's test of
// the log's clock: the compact reader merges the threads by time, so a malloc in one thread
// and the free of its block in the other, or a free and the malloc that gets the block back,
// must be in order by time. A clock that put different times on one moment in different
// threads shows up as frees of unknown pointers and allocations of live ones.
//
//   handoff_program N
//
// The producer mallocs N blocks of 32..88 bytes and passes each through a one-slot mailbox
// to the consumer, which frees it: N malloc/free pairs, every free in the other thread. The
// blocks come back to the producer through the allocator's shared lists (a free and a malloc
// of one block in different threads). Spins, never sleeps, and one slot: each malloc and the
// free of its block are a few hundred ns apart. Measured: a clock 300 ns ahead on odd CPUs
// broke this log; test_four_threads missed 100 us (its frees follow a barrier, no reuse).
// No stdio: its buffers would be blocks too.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kRing = 1 };  // more slots let the handoffs drift apart (16: 500 ns went unseen)

static void* g_ring[kRing];
static _Alignas(64) atomic_ulong g_head;  // next slot to fill (producer)
static _Alignas(64) atomic_ulong g_tail;  // next slot to drain (consumer)
static unsigned long g_n;

static void die(const char* what) {
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    _exit(3);
}

static void* producer(void* arg) {
    (void)arg;
    for (unsigned long i = 0; i < g_n; ++i) {
        void* p = malloc(32 + (i % 8) * 8);
        if (!p) die("malloc failed");
        memset(p, (int)(i & 0xff), 32);
        for (unsigned spins = 0; i - atomic_load_explicit(&g_tail, memory_order_acquire) == kRing; ++spins)
            if (spins > 1000) sched_yield();  // two threads on one core: let the other run
        g_ring[i % kRing] = p;
        atomic_store_explicit(&g_head, i + 1, memory_order_release);
    }
    return NULL;
}

static void* consumer(void* arg) {
    (void)arg;
    for (unsigned long i = 0; i < g_n; ++i) {
        for (unsigned spins = 0; atomic_load_explicit(&g_head, memory_order_acquire) == i; ++spins)
            if (spins > 1000) sched_yield();
        unsigned char* p = g_ring[i % kRing];
        if (p[31] != (unsigned char)(i & 0xff)) die("block overwritten");
        free(p);
        atomic_store_explicit(&g_tail, i + 1, memory_order_release);
    }
    return NULL;
}

int main(int argc, char** argv) {
    g_n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    pthread_t th[2];
    if (pthread_create(&th[0], NULL, producer, NULL) || pthread_create(&th[1], NULL, consumer, NULL))
        die("pthread_create");
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    return 0;
}
