/* Workload: many short-lived threads, four at a time (a pool-less server, a parallel build
 * step). Each allocates a few hundred small blocks, frees most of them, hands one result block
 * to the main thread, which frees it after the thread is gone, and exits. What it measures:
 * the cost of a thread's first and last allocation (per-thread caches set up and torn down),
 * and whether the memory cached by dead threads comes back. Figures: RSS after the last join. */
#include <pthread.h>

#include "bench_common.h"

enum { WAVE = 4, BLOCKS = 300 };
static const uint64_t base_threads = 4000;

typedef struct {
    uint64_t seed, sum;
    void *result;
} job;

static void *worker(void *arg)
{
    job *j = (job *)arg;
    void *block[BLOCKS];
    uint32_t size[BLOCKS];
    bench_rng r;
    bench_rng_seed(&r, j->seed);
    for (int i = 0; i < BLOCKS; ++i) {
        size[i] = (uint32_t)bench_small_size(&r);
        if (!(block[i] = malloc(size[i])))
            bench_oom("thread_churn");
        bench_stamp(block[i], size[i], (uint8_t)i);
    }
    /* Free in a scrambled order (every 7th index mod BLOCKS) but keep block 0 as the result. */
    for (int k = 1; k < BLOCKS; ++k) {
        int i = (k * 7) % BLOCKS;
        if (i == 0)
            continue;
        j->sum += bench_read(block[i], size[i]);
        free(block[i]);
    }
    j->sum += size[0];
    j->result = block[0];
    return NULL;
}

static long rss_end;

BENCH_RUN(uint64_t threads)
{
    uint64_t sum = 0;
    for (uint64_t done = 0; done < threads; done += WAVE) {
        pthread_t tid[WAVE];
        job jobs[WAVE];
        for (int t = 0; t < WAVE; ++t) {
            jobs[t] = (job){.seed = done + (uint64_t)t, .sum = 0, .result = NULL};
            if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0)
                bench_oom("pthread_create");
        }
        for (int t = 0; t < WAVE; ++t) {
            pthread_join(tid[t], NULL);
            sum += jobs[t].sum + *(unsigned char *)jobs[t].result;
            free(jobs[t].result); /* its owner thread has exited */
        }
    }
    rss_end = bench_rss_kb();
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t threads = bench_scaled(base_threads, bench_scale(argc, argv));
    threads = (threads + WAVE - 1) / WAVE * WAVE;
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(threads);
    uint64_t t1 = bench_now_ns();
    char extra[64] = "";
    bench_extra(extra, sizeof extra, "rss_end_kb", rss_end);
    bench_report_extra("thread_churn", sum, t1 - t0, extra);
    return 0;
}
