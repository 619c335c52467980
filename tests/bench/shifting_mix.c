/* Workload: a churn whose size mix shifts over time, as a program moves from parsing (tiny
 * nodes) to building records, pages and buffers, then back. Five phases favour, in turn,
 * 16-64 B, 200-500 B, 1-4 KiB, 8-32 KiB and 16-64 B again (90% of the allocations; the other
 * 10% stay tiny, as small objects always exist). Live data is capped at 64 MiB (scaled): when
 * a new block would pass the cap, random live blocks are freed first. Each phase allocates four
 * times the cap, so the population turns over. An allocator that keeps memory per size class
 * and never hands it to another class grows with every phase. Figures: RSS at the end, with the
 * last phase's data still live, and the live bytes then. */
#include <string.h>

#include "bench_common.h"

enum { PHASES = 5, MAX_LIVE_OBJECTS = 1 << 20 };
static const uint64_t base_cap = 64ull << 20;
static const uint32_t band_lo[PHASES] = {16, 200, 1024, 8192, 16};
static const uint32_t band_hi[PHASES] = {64, 500, 4096, 32768, 64};

typedef struct {
    void *p;
    uint32_t size;
} block;

static long rss_final;
static uint64_t live_final;

static uint64_t release(block *live, uint64_t *n, uint64_t *bytes, bench_rng *r)
{
    uint32_t i = bench_below(r, (uint32_t)*n);
    uint64_t sum = bench_read(live[i].p, live[i].size);
    free(live[i].p);
    *bytes -= live[i].size;
    live[i] = live[--*n];
    return sum;
}

BENCH_RUN(uint64_t cap)
{
    /* The table is the same size under every allocator, and small next to the cap. */
    uint64_t max_objects = cap / 128 < MAX_LIVE_OBJECTS ? cap / 128 : MAX_LIVE_OBJECTS;
    block *live = (block *)malloc(max_objects * sizeof *live);
    if (!live)
        bench_oom("shifting_mix table");
    uint64_t n = 0, bytes = 0, sum = 0;
    bench_rng r;
    bench_rng_seed(&r, 7);

    for (int ph = 0; ph < PHASES; ++ph) {
        for (uint64_t allocated = 0; allocated < 4 * cap;) {
            int band = bench_below(&r, 10) == 0 ? 0 : ph;
            uint32_t size = band_lo[band] + bench_below(&r, band_hi[band] - band_lo[band] + 1);
            while (n && (bytes + size > cap || n == max_objects))
                sum += release(live, &n, &bytes, &r);
            unsigned char *p = (unsigned char *)malloc(size);
            if (!p)
                bench_oom("shifting_mix");
            /* Written in full, as a real program writes what it asks for. */
            memset(p, (int)(allocated & 0xFF), size);
            bench_stamp(p, size, (uint8_t)ph);
            live[n++] = (block){p, size};
            bytes += size;
            allocated += size;
        }
    }
    rss_final = bench_rss_kb();
    live_final = bytes;
    while (n)
        sum += release(live, &n, &bytes, &r);
    free(live);
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t cap = bench_scaled(base_cap, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(cap);
    uint64_t t1 = bench_now_ns();
    char extra[128] = "";
    bench_extra(extra, sizeof extra, "rss_final_kb", rss_final);
    bench_extra(extra, sizeof extra, "live_final_kb", (long long)(live_final >> 10));
    bench_report_extra("shifting_mix", sum, t1 - t0, extra);
    return 0;
}
