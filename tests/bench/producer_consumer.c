/* Workload 3: one thread mallocs blocks and hands them over a bounded queue; the other reads
 * and frees them. Every free is a cross-thread free, the case thread caches find hardest. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "bench_common.h"

/* Single-producer single-consumer ring. Lock-free so the queue itself costs little next to
 * malloc/free; a full or empty ring yields rather than spins, which matters on 2 cores. */
enum { RING = 1024 };

typedef struct {
    void *item[RING];
    uint32_t len[RING];
    _Alignas(64) atomic_uint_fast64_t head; /* next slot to fill, written by the producer */
    _Alignas(64) atomic_uint_fast64_t tail; /* next slot to drain, written by the consumer */
    uint64_t count;
    uint64_t sum;
} ring;

static void *producer(void *arg)
{
    ring *q = (ring *)arg;
    bench_rng r;
    bench_rng_seed(&r, 7);
    uint64_t tail = 0; /* last tail seen: re-read only when the ring looks full */
    for (uint64_t n = 0; n < q->count; ++n) {
        size_t size = bench_small_size(&r) + 8; /* 16..520 B */
        void *p = malloc(size);
        if (!p)
            bench_oom("producer");
        bench_stamp(p, size, (uint8_t)n);
        while (n - tail == RING) {
            tail = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (n - tail == RING)
                sched_yield();
        }
        q->item[n % RING] = p;
        q->len[n % RING] = (uint32_t)size;
        if ((n & 15) == 15 || n + 1 == q->count) /* batched like the tail, see consumer */
            atomic_store_explicit(&q->head, n + 1, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    ring *q = (ring *)arg;
    uint64_t sum = 0;
    uint64_t head = 0; /* last head seen: re-read only when the ring looks empty */
    for (uint64_t t = 0; t < q->count; ++t) {
        while (head == t) {
            head = atomic_load_explicit(&q->head, memory_order_acquire);
            if (head == t)
                sched_yield();
        }
        void *p = q->item[t % RING];
        sum += bench_read(p, q->len[t % RING]);
        free(p);
        /* Publishing progress every few items keeps the producer's view fresh without
         * bouncing the tail's cache line on every free. */
        if ((t & 15) == 15 || t + 1 == q->count)
            atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    }
    q->sum = sum;
    return NULL;
}

BENCH_RUN(uint64_t count)
{
    static ring q; /* static: too big for comfort on the stack, and zeroed */
    atomic_init(&q.head, 0);
    atomic_init(&q.tail, 0);
    q.count = count;
    q.sum = 0;
    pthread_t p, c;
    if (pthread_create(&c, NULL, consumer, &q) != 0 || pthread_create(&p, NULL, producer, &q) != 0)
        bench_oom("pthread_create");
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    return q.sum;
}

int main(int argc, char **argv)
{
    uint64_t count = bench_scaled(3000000, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(count);
    uint64_t t1 = bench_now_ns();
    bench_report("producer_consumer", sum, t1 - t0);
    return 0;
}
