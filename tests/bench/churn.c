/* Workload 1: single-thread small-object churn (see churn_core.h). */
#include "churn_core.h"

BENCH_RUN(uint64_t ops)
{
    return churn(1, ops);
}

int main(int argc, char **argv)
{
    uint64_t ops = bench_scaled(churn_base_ops, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(ops);
    uint64_t t1 = bench_now_ns();
    bench_report("churn", sum, t1 - t0);
    return 0;
}
