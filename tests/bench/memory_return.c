/* Workload: does freed memory go back to the system, and is it reused for another size?
 * Allocate a volume of 256-byte blocks, free them all, idle a while, then allocate the same
 * volume of 1000-byte blocks. Figures: RSS at the start, right after the frees, after the idle,
 * and at the top of the second phase. Returned memory reads as rss_idle_kb close to
 * rss_start_kb; reuse across sizes reads as rss_phase2_kb close to one volume, not two.
 *
 * Volume 256 MiB at scale 1.0 (scale 4 is the 1 GiB case). The idle is a fixed 3 s: decay
 * times are wall-clock times, they do not scale with the volume. `ns` leaves the idle out. */
#include "bench_common.h"

enum { IDLE_MS = 3000 };
static const uint64_t base_volume = 256ull << 20;

static long rss_start, rss_freed, rss_idle, rss_phase2;
static uint64_t idle_ns;

/* The blocks are chained through their first word, so the workload needs no side table whose
 * own pages would blur the figures. Returns the head of the chain. */
static void **fill(uint64_t volume, size_t size, uint8_t tag)
{
    void **head = NULL;
    for (uint64_t n = volume / size; n; --n) {
        void **p = (void **)malloc(size);
        if (!p)
            bench_oom("memory_return");
        bench_stamp(p, size, tag);
        p[1] = head; /* word 0 carries the stamp */
        head = p;
    }
    return head;
}

static uint64_t drain(void **head, size_t size)
{
    uint64_t sum = 0;
    while (head) {
        void **next = (void **)head[1];
        sum += bench_read(head, size);
        free(head);
        head = next;
    }
    return sum;
}

BENCH_RUN(uint64_t volume)
{
    rss_start = bench_rss_kb();
    uint64_t sum = drain(fill(volume, 256, 0x21), 256);
    rss_freed = bench_rss_kb();

    uint64_t t = bench_now_ns();
    bench_idle_ms(IDLE_MS);
    idle_ns = bench_now_ns() - t;
    rss_idle = bench_rss_kb();

    void **second = fill(volume, 1000, 0x43);
    rss_phase2 = bench_rss_kb(); /* phase 2 only allocates: its peak is now */
    return sum + drain(second, 1000);
}

int main(int argc, char **argv)
{
    uint64_t volume = bench_scaled(base_volume, bench_scale(argc, argv));
    uint64_t t0 = bench_now_ns();
    uint64_t sum = bench_run(volume);
    uint64_t t1 = bench_now_ns();
    char extra[256] = "";
    bench_extra(extra, sizeof extra, "rss_start_kb", rss_start);
    bench_extra(extra, sizeof extra, "rss_freed_kb", rss_freed);
    bench_extra(extra, sizeof extra, "rss_idle_kb", rss_idle);
    bench_extra(extra, sizeof extra, "rss_phase2_kb", rss_phase2);
    bench_extra(extra, sizeof extra, "volume_kb", (long long)(volume >> 10));
    bench_report_extra("memory_return", sum, t1 - t0 - idle_ns, extra);
    return 0;
}
