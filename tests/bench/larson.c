/* Workload 6: simplified larson server benchmark. Two threads and two working sets; in each
 * round a thread replaces random blocks of one set, then at a barrier the sets swap owners, so
 * every thread frees blocks the other thread allocated, while both keep allocating. */
#include <pthread.h>

#include "bench_common.h"

enum { THREADS = 2, SLOTS = 4000, ROUNDS = 40 };

typedef struct {
    void *ptr[SLOTS];
    uint32_t len[SLOTS];
} heap_set;

typedef struct {
    int id;
    uint64_t ops_per_round;
    uint64_t sum;
} job;

static heap_set sets[THREADS];
static pthread_barrier_t barrier;

static size_t larson_size(bench_rng *r)
{
    return 16 + bench_below(r, 241); /* 16..256 B, uniform as in larson */
}

static void *worker(void *arg)
{
    job *j = (job *)arg;
    bench_rng r;
    bench_rng_seed(&r, 300 + (uint64_t)j->id);
    uint64_t sum = 0;

    heap_set *own = &sets[j->id];
    for (int i = 0; i < SLOTS; ++i) {
        own->len[i] = (uint32_t)larson_size(&r);
        if (!(own->ptr[i] = malloc(own->len[i])))
            bench_oom("larson");
        bench_stamp(own->ptr[i], own->len[i], (uint8_t)i);
    }
    for (int round = 0; round < ROUNDS; ++round) {
        /* Each set was filled by the other thread last round (by this one in round 0). */
        pthread_barrier_wait(&barrier);
        heap_set *s = &sets[(j->id + round) % THREADS];
        for (uint64_t n = 0; n < j->ops_per_round; ++n) {
            uint32_t i = bench_below(&r, SLOTS);
            sum += bench_read(s->ptr[i], s->len[i]);
            free(s->ptr[i]);
            s->len[i] = (uint32_t)larson_size(&r);
            if (!(s->ptr[i] = malloc(s->len[i])))
                bench_oom("larson");
            bench_stamp(s->ptr[i], s->len[i], (uint8_t)n);
        }
    }
    pthread_barrier_wait(&barrier);
    /* Free what is left in the set this thread did not touch last. */
    heap_set *s = &sets[(j->id + ROUNDS) % THREADS];
    for (int i = 0; i < SLOTS; ++i) {
        sum += bench_read(s->ptr[i], s->len[i]);
        free(s->ptr[i]);
    }
    j->sum = sum;
    return NULL;
}

BENCH_RUN(uint64_t ops_per_round)
{
    job jobs[THREADS];
    pthread_t tid[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int t = 0; t < THREADS; ++t) {
        jobs[t] = (job){.id = t, .ops_per_round = ops_per_round, .sum = 0};
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0)
            bench_oom("pthread_create");
    }
    uint64_t sum = 0;
    for (int t = 0; t < THREADS; ++t) {
        pthread_join(tid[t], NULL);
        sum += jobs[t].sum;
    }
    pthread_barrier_destroy(&barrier);
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t ops = bench_scaled(10000000 / ROUNDS, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(ops);
    uint64_t t1 = bench_now_ns();
    bench_report("larson", sum, t1 - t0);
    return 0;
}
