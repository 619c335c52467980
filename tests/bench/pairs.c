/* Workload 2: two threads, each churning its own working set (thread-local malloc/free only).
 * Shows per-thread caching versus contention on shared heap state. */
#include <pthread.h>

#include "churn_core.h"

enum { THREADS = 2 };

typedef struct {
    uint64_t seed, ops, sum;
} job;

static void *worker(void *arg)
{
    job *j = (job *)arg;
    j->sum = churn(j->seed, j->ops);
    return NULL;
}

BENCH_RUN(uint64_t ops)
{
    job jobs[THREADS];
    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; ++t) {
        jobs[t] = (job){.seed = 100 + (uint64_t)t, .ops = ops, .sum = 0};
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0)
            bench_oom("pthread_create");
    }
    uint64_t sum = 0;
    for (int t = 0; t < THREADS; ++t) {
        pthread_join(tid[t], NULL);
        sum += jobs[t].sum;
    }
    return sum;
}

int main(int argc, char **argv)
{
    /* Per thread; the same count as churn so the two figures compare directly. */
    uint64_t ops = bench_scaled(churn_base_ops, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(ops);
    uint64_t t1 = bench_now_ns();
    bench_report("pairs", sum, t1 - t0);
    return 0;
}
