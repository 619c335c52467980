/* Workload: large blocks, 64 KiB to 16 MiB (log-uniform, so as many under 1 MiB as over), in
 * 32 slots: replace a block (free + malloc), or resize it with realloc, at random. One new or
 * grown block in four is written in full, as a buffer being filled; the others only at their
 * ends, as a reserve that is mostly untouched. realloc must keep the contents it promises.
 * This is where allocators hand out mmap'd memory, reuse or keep it, or grow it in place. */
#include <string.h>

#include "bench_common.h"

enum { SLOTS = 32 };
static const uint64_t base_ops = 6000;

static size_t large_size(bench_rng *r)
{
    /* 2^16..2^24 bytes: a power of two times a uniform factor in [1, 2). */
    size_t base = (size_t)1 << (16 + bench_below(r, 8));
    return base + bench_below(r, (uint32_t)base);
}

static void fill(unsigned char *p, size_t from, size_t to, bench_rng *r, uint8_t tag)
{
    if (bench_below(r, 4) == 0)
        memset(p + from, tag, to - from);
    bench_stamp(p, to, tag);
}

BENCH_RUN(uint64_t ops)
{
    static unsigned char *slot[SLOTS];
    static size_t len[SLOTS];
    bench_rng r;
    bench_rng_seed(&r, 64);
    uint64_t sum = 0;

    for (uint64_t n = 0; n < ops; ++n) {
        uint32_t i = bench_below(&r, SLOTS);
        size_t size = large_size(&r);
        if (!slot[i] || bench_below(&r, 2) == 0) { /* replace */
            if (slot[i]) {
                sum += bench_read(slot[i], len[i]);
                free(slot[i]);
            }
            if (!(slot[i] = (unsigned char *)malloc(size)))
                bench_oom("large_blocks malloc");
            fill(slot[i], 0, size, &r, (uint8_t)n);
        } else { /* resize: the first byte must survive, and the last if it is kept */
            unsigned char head = slot[i][0];
            unsigned char *p = (unsigned char *)realloc(slot[i], size);
            if (!p)
                bench_oom("large_blocks realloc");
            if (p[0] != head) {
                fprintf(stderr, "large_blocks: realloc lost the contents\n");
                exit(4);
            }
            sum += head + (size < len[i] ? size : len[i]);
            slot[i] = p;
            fill(p, size > len[i] ? len[i] : size, size, &r, (uint8_t)n);
        }
        len[i] = size;
    }
    for (int i = 0; i < SLOTS; ++i)
        if (slot[i]) {
            sum += bench_read(slot[i], len[i]);
            free(slot[i]);
            slot[i] = NULL;
        }
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t ops = bench_scaled(base_ops, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(ops);
    uint64_t t1 = bench_now_ns();
    bench_report("large_blocks", sum, t1 - t0);
    return 0;
}
