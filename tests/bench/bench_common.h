/* Shared helpers for the allocator workloads (C and C++).
 *
 * Protocol with scripts/bench: a workload takes one optional argument, a scale factor (default
 * 1.0) that multiplies its operation count, and prints exactly one line on stdout:
 *
 *   <name> checksum=<u64> ns=<u64> maxrss_kb=<long> malloc_from=<path> [<key>=<int> ...]
 *
 * The optional trailing fields are a workload's own figures (RSS at given moments, counts);
 * scripts/bench shows them in a table per workload, as ratios to glibc. A key ending in `_kb`
 * is a size in KiB. A figure that is the same under every allocator describes the workload.
 * `ns` covers the hot part only (clock_gettime around bench_run), so process start and the
 * loader do not count. The checksum depends only on the seed and the scale, never on addresses
 * or scheduling, so every allocator must print the same one: a difference means corruption.
 * `malloc_from` says which object defines malloc, so the runner can tell that LD_PRELOAD took.
 * Under callgrind the runner collects only inside functions named bench_run.
 */
#ifndef CHAINALLOC_BENCH_COMMON_H
#define CHAINALLOC_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, RTLD_DEFAULT */
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
#define BENCH_EXTERN_C extern "C"
#else
#define BENCH_EXTERN_C
#endif

/* The measured function: fixed unmangled name, never inlined, so callgrind can toggle on it. */
#define BENCH_RUN BENCH_EXTERN_C __attribute__((noinline)) uint64_t bench_run

/* xorshift64*: fast, seedable, and identical on every run (no libc rand state). */
typedef struct {
    uint64_t s;
} bench_rng;

static inline void bench_rng_seed(bench_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 1; /* never zero */
}

static inline uint64_t bench_next(bench_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) without a division (Lemire's multiply-shift). */
static inline uint32_t bench_below(bench_rng *r, uint32_t n)
{
    return (uint32_t)(((bench_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Small-object size in 8..512, skewed small like real programs: 60% up to 64 B, 30% up to
 * 256 B, 10% up to 512 B. */
static inline size_t bench_small_size(bench_rng *r)
{
    uint32_t pick = bench_below(r, 10);
    if (pick < 6)
        return 8 + bench_below(r, 57);
    if (pick < 9)
        return 65 + bench_below(r, 192);
    return 257 + bench_below(r, 256);
}

/* Mark a fresh block at both ends (so the whole extent must really be usable) ... */
static inline void bench_stamp(void *p, size_t size, uint8_t tag)
{
    unsigned char *c = (unsigned char *)p;
    c[0] = tag;
    c[size - 1] = (unsigned char)(tag ^ 0x5A);
}

/* ... and read both marks back before freeing it; a clobbered mark changes the checksum. */
static inline uint64_t bench_read(const void *p, size_t size)
{
    const unsigned char *c = (const unsigned char *)p;
    return (uint64_t)c[0] * 31u + c[size - 1] + size;
}

static inline double bench_scale(int argc, char **argv)
{
    double s = argc > 1 ? atof(argv[1]) : 1.0;
    if (!(s > 0)) {
        fprintf(stderr, "usage: %s [scale>0]\n", argv[0]);
        exit(2);
    }
    return s;
}

static inline uint64_t bench_scaled(uint64_t base, double scale)
{
    uint64_t n = (uint64_t)((double)base * scale);
    return n ? n : 1;
}

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bench_oom(const char *what)
{
    fprintf(stderr, "out of memory in %s\n", what);
    exit(3);
}

/* Peak RSS of this process image. VmHWM rather than getrusage: Linux carries ru_maxrss over
 * execve, so getrusage would report the launching process (e.g. the Python runner) instead. */
static inline long bench_peak_rss_kb(void)
{
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld", &kb) == 1)
                break;
        fclose(f);
    }
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

/* Resident set now, in KiB (/proc/self/statm counts pages). */
static inline long bench_rss_kb(void)
{
    long size = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Idle for `ms` milliseconds, as a quiet server would: asleep, but with a small allocation
 * every 50 ms (a timer, a log line). Some allocators give memory back only from inside an
 * allocator call once their decay time has passed, so a process that never calls malloc again
 * would never see it returned; the heartbeat gives every allocator the same chance. */
static inline void bench_idle_ms(unsigned ms)
{
    for (unsigned waited = 0; waited < ms; waited += 50) {
        struct timespec step = {0, 50 * 1000000L};
        nanosleep(&step, NULL);
        volatile char *beat = (volatile char *)malloc(64);
        if (!beat)
            bench_oom("heartbeat");
        beat[0] = 1;
        free((void *)beat);
    }
}

/* Append ` key=value` to a workload's extra figures (see the protocol above). */
static inline void bench_extra(char *buf, size_t cap, const char *key, long long value)
{
    size_t used = strlen(buf);
    if (used < cap)
        snprintf(buf + used, cap - used, " %s=%lld", key, value);
}

static inline void bench_report_extra(const char *name, uint64_t checksum, uint64_t ns,
                                      const char *extra)
{
    long rss_kb = bench_peak_rss_kb();
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    const char *from = sym && dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "?";
    printf("%s checksum=%llu ns=%llu maxrss_kb=%ld malloc_from=%s%s\n", name,
           (unsigned long long)checksum, (unsigned long long)ns, rss_kb, from, extra);
}

static inline void bench_report(const char *name, uint64_t checksum, uint64_t ns)
{
    bench_report_extra(name, checksum, ns, "");
}

#endif
