/* Workload: the fast path alone, one malloc(32) + free(pair) after another. Under --callgrind
 * scripts/bench runs it at two scales and divides the difference in instructions by the
 * difference in pairs, so start-up and first-touch costs cancel; what remains is one pair plus
 * the loop around it: 14 instructions at -O2 (callgrind's self cost of bench_run: the counter,
 * the test, the store and reload, the sum, the two calls). */
#include "bench_common.h"

static const uint64_t base_pairs = 50000000;

BENCH_RUN(uint64_t pairs)
{
    uint64_t sum = 0;
    for (uint64_t n = 0; n < pairs; ++n) {
        volatile unsigned char *p = (volatile unsigned char *)malloc(32);
        if (!p)
            bench_oom("pair");
        p[0] = (unsigned char)n; /* the block is used, so the pair is not dead code */
        sum += p[0];
        free((void *)p);
    }
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t pairs = bench_scaled(base_pairs, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(pairs);
    uint64_t t1 = bench_now_ns();
    char extra[64] = "";
    bench_extra(extra, sizeof extra, "pairs", (long long)pairs);
    bench_report_extra("pair", sum, t1 - t0, extra);
    return 0;
}
