// Freed memory goes back to the system, and is reused rather than doubled: a long-running
// program that once peaked must not keep (or grow past) that peak for good.
//  1. 256 MiB in 256-byte blocks, written, then all freed: within 3 s (polled every 100 ms)
//     RSS must be back to at most the RSS before the allocation + 32 MiB.
//  2. 256 MiB in 1000-byte blocks (another class), written: RSS must stay below the RSS before
//     phase 1 + 1.25 x 256 MiB + 32 MiB, i.e. phase 1's memory is not still held beside it.
// Each poll makes one small malloc/free, as a running program would: an allocator that returns
// memory lazily, from its own calls, passes; one that needs a fully idle program's help can't.
// RSS is read with open/read, which allocates nothing.
#include "check.h"

#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const size_t kTotal = (size_t)256 << 20;
static const size_t kSlack = (size_t)32 << 20;

// VmRSS from /proc/self/status, in bytes (0 if unreadable).
static size_t rss(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* line = strstr(buf, "VmRSS:");
    return line ? (size_t)strtoul(line + 6, NULL, 10) << 10 : 0;
}

// count blocks of size bytes, written, into blocks[]; false if one failed.
static int fill(void** blocks, size_t size, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        blocks[i] = malloc(size);
        if (!CHECK(blocks[i] != NULL, "malloc(%zu) number %zu failed", size, i)) return 0;
        memset(blocks[i], (int)i, size);
    }
    return 1;
}

static double mib(size_t bytes) { return (double)bytes / (1 << 20); }

int main(void) {
    // Both pointer arrays first, written, kept to the end: their pages are in the baseline.
    const size_t n1 = kTotal / 256, n2 = kTotal / 1000;
    void** first = malloc(n1 * sizeof *first);
    void** second = malloc(n2 * sizeof *second);
    if (!CHECK(first && second, "pointer arrays")) return check_finish();
    memset(first, 0, n1 * sizeof *first);
    memset(second, 0, n2 * sizeof *second);

    size_t before = rss();
    if (!fill(first, 256, n1)) return check_finish();
    size_t full = rss();
    for (size_t i = 0; i < n1; ++i) free(first[i]);
    size_t after = rss();
    int polls = 0;
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (after > before + kSlack && polls < 30) {
        nanosleep(&tick, NULL);
        free(malloc(64));
        after = rss();
        ++polls;
    }
    printf("phase 1: RSS %.1f MiB before, %.1f MiB with 256 MiB of 256-byte blocks, "
           "%.1f MiB after free (%d ms later); limit %.1f MiB\n",
           mib(before), mib(full), mib(after), polls * 100, mib(before + kSlack));
    CHECK(after <= before + kSlack, "RSS after free %.1f MiB > %.1f MiB (before + 32 MiB)", mib(after),
          mib(before + kSlack));

    if (!fill(second, 1000, n2)) return check_finish();
    size_t peak = rss();
    size_t limit = before + kTotal + kTotal / 4 + kSlack;
    printf("phase 2: RSS %.1f MiB with 256 MiB of 1000-byte blocks; limit %.1f MiB\n", mib(peak), mib(limit));
    CHECK(peak < limit, "RSS %.1f MiB >= %.1f MiB (before + 1.25 x 256 MiB + 32 MiB)", mib(peak), mib(limit));
    for (size_t i = 0; i < n2; ++i) free(second[i]);
    free(first);
    free(second);
    return check_finish();
}
