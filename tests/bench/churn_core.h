/* Small-object churn shared by `churn` (one thread) and `pairs` (one per thread): fill a
 * working set of CHURN_SLOTS blocks, then repeatedly free a random slot and refill it with a
 * new random size, then free everything. Every block is stamped and read back. */
#ifndef CHAINALLOC_BENCH_CHURN_CORE_H
#define CHAINALLOC_BENCH_CHURN_CORE_H

#include "bench_common.h"

enum { CHURN_SLOTS = 10000 };

/* Tuned so 1.0 takes roughly half a second under glibc on the 2-core dev box. */
static const uint64_t churn_base_ops = 20000000;

static inline uint64_t churn(uint64_t seed, uint64_t ops)
{
    void *slot[CHURN_SLOTS];
    uint32_t size[CHURN_SLOTS];
    bench_rng r;
    bench_rng_seed(&r, seed);
    uint64_t sum = 0;

    for (int i = 0; i < CHURN_SLOTS; ++i) {
        size[i] = (uint32_t)bench_small_size(&r);
        if (!(slot[i] = malloc(size[i])))
            bench_oom("churn");
        bench_stamp(slot[i], size[i], (uint8_t)i);
    }
    for (uint64_t n = 0; n < ops; ++n) {
        uint32_t i = bench_below(&r, CHURN_SLOTS);
        sum += bench_read(slot[i], size[i]);
        free(slot[i]);
        size[i] = (uint32_t)bench_small_size(&r);
        if (!(slot[i] = malloc(size[i])))
            bench_oom("churn");
        bench_stamp(slot[i], size[i], (uint8_t)n);
    }
    for (int i = 0; i < CHURN_SLOTS; ++i) {
        sum += bench_read(slot[i], size[i]);
        free(slot[i]);
    }
    return sum;
}

#endif
