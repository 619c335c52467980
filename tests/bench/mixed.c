/* Workload 4: single thread, a realistic mix of sizes from 16 B to 256 KiB (mostly small, a tail
 * of page-sized and large blocks), calloc, and string-builder buffers grown by realloc. Also
 * checks what the C contract promises: calloc memory is zero, realloc keeps the contents. */
#include <string.h>

#include "bench_common.h"

enum { SLOTS = 4096, BUILDERS = 64 };

static size_t mixed_size(bench_rng *r)
{
    uint32_t pick = bench_below(r, 1000);
    if (pick < 700)
        return 16 + bench_below(r, 113); /* 70%: 16..128 B */
    if (pick < 900)
        return 129 + bench_below(r, 896); /* 20%: up to 1 KiB */
    if (pick < 980)
        return 1025 + bench_below(r, 15360); /* 8%: up to 16 KiB */
    return 16385 + bench_below(r, 245760); /* 2%: up to 256 KiB */
}

static void die(const char *what)
{
    fprintf(stderr, "mixed: %s\n", what);
    exit(4);
}

BENCH_RUN(uint64_t ops)
{
    static void *slot[SLOTS];
    static uint32_t len[SLOTS];
    /* A builder appends small pieces, growing by 1.5x when full, up to a random target; then it
     * is "finished": kept a while in its slot and replaced. */
    static char *buf[BUILDERS];
    static size_t used[BUILDERS], cap[BUILDERS], target[BUILDERS];
    bench_rng r;
    bench_rng_seed(&r, 42);
    uint64_t sum = 0;

    for (uint64_t n = 0; n < ops; ++n) {
        uint32_t kind = bench_below(&r, 100);
        if (kind < 75) { /* replace a slot with malloc (or calloc, one in five) */
            uint32_t i = bench_below(&r, SLOTS);
            if (slot[i]) {
                sum += bench_read(slot[i], len[i]);
                free(slot[i]);
            }
            size_t size = mixed_size(&r);
            if (kind < 15) {
                unsigned char *p = (unsigned char *)calloc(1, size);
                if (!p)
                    bench_oom("mixed calloc");
                if (p[0] | p[size / 2] | p[size - 1])
                    die("calloc returned non-zero memory");
                slot[i] = p;
            } else if (!(slot[i] = malloc(size))) {
                bench_oom("mixed malloc");
            }
            len[i] = (uint32_t)size;
            bench_stamp(slot[i], size, (uint8_t)n);
        } else { /* append to a builder */
            uint32_t b = bench_below(&r, BUILDERS);
            if (!buf[b]) {
                cap[b] = 16;
                used[b] = 0;
                target[b] = 64 + bench_below(&r, 64 * 1024);
                if (!(buf[b] = (char *)malloc(cap[b])))
                    bench_oom("mixed builder");
            }
            size_t piece = 1 + bench_below(&r, 48);
            if (used[b] + piece > cap[b]) {
                size_t grown = cap[b] + cap[b] / 2;
                if (grown < used[b] + piece)
                    grown = used[b] + piece;
                size_t keep = used[b];
                char head = keep ? buf[b][0] : 0, tail = keep ? buf[b][keep - 1] : 0;
                char *p = (char *)realloc(buf[b], grown);
                if (!p)
                    bench_oom("mixed realloc");
                if (keep && (p[0] != head || p[keep - 1] != tail))
                    die("realloc lost the contents");
                buf[b] = p;
                cap[b] = grown;
            }
            memset(buf[b] + used[b], 'a' + (int)(n % 26), piece);
            used[b] += piece;
            if (used[b] >= target[b]) {
                sum += used[b] + (unsigned char)buf[b][used[b] / 2];
                free(buf[b]);
                buf[b] = NULL;
            }
        }
    }
    for (int i = 0; i < SLOTS; ++i)
        if (slot[i]) {
            sum += bench_read(slot[i], len[i]);
            free(slot[i]);
            slot[i] = NULL;
        }
    for (int b = 0; b < BUILDERS; ++b) {
        free(buf[b]);
        buf[b] = NULL;
    }
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t ops = bench_scaled(5000000, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(ops);
    uint64_t t1 = bench_now_ns();
    bench_report("mixed", sum, t1 - t0);
    return 0;
}
