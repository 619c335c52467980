// malloc_trim under the preload: memory the free lists still hold (a few MiB freed, under the
// bound that is given back at once, so it would wait for the decay) goes back to the system
// now, and malloc_trim says so. Then allocation goes on as usual.
#include "check.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

enum { kBlock = 256, kBlocks = 3 << 20 >> 8 };  // 3 MiB

// VmRSS in KiB, read without allocating.
static long rss_kb(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char* at = strstr(buf, "VmRSS:");
    return at ? atol(at + 6) : -1;
}

int main(void) {
    static void* blocks[kBlocks];
    long before = rss_kb();
    for (int i = 0; i < kBlocks; ++i) {
        blocks[i] = malloc(kBlock);
        if (blocks[i]) memset(blocks[i], 0x5a, kBlock);
    }
    long full = rss_kb();
    for (int i = 0; i < kBlocks; ++i) free(blocks[i]);
    long freed = rss_kb();
    int trimmed = malloc_trim(0);
    long after = rss_kb();
    printf("RSS %ld KiB before, %ld full, %ld freed, %ld after malloc_trim (returned %d)\n", before, full, freed,
           after, trimmed);
    CHECK(full - before >= 2048, "3 MiB of blocks did not show in RSS (%ld -> %ld KiB)", before, full);
    CHECK(trimmed == 1, "malloc_trim returned %d", trimmed);
    CHECK(after <= before + 1024, "RSS %ld KiB after malloc_trim, %ld before the blocks", after, before);
    check_still_running();
    return check_finish();
}
