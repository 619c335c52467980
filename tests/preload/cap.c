// The memory cap: under `freelist(max=NM) > null` malloc must return NULL with errno ENOMEM
// once N MiB are taken, and the program must keep running: freed memory is usable again and
// every other call keeps its contract. Usage: cap N (the cap in MiB).
#include "check.h"

#include <errno.h>
#include <stdlib.h>

enum { kBlock = 4096, kMaxBlocks = 1 << 20 };

int main(int argc, char** argv) {
    size_t cap = (size_t)(argc > 1 ? atol(argv[1]) : 64) << 20;
    static void* blocks[kMaxBlocks];
    size_t n = 0;
    errno = 0;
    while (n < kMaxBlocks) {
        void* p = malloc(kBlock);
        if (!p) break;
        memset(p, 0xab, kBlock);  // really usable, not just reserved
        blocks[n++] = p;
    }
    size_t taken = n * (size_t)kBlock;
    CHECK(n < kMaxBlocks, "no cap: %zu blocks allocated", n);
    CHECK(errno == ENOMEM, "malloc past the cap: errno %d, want ENOMEM", errno);
    // Everything else the process allocated counts against the cap too, so allow 1 MiB of it.
    CHECK(taken <= cap && taken + (1 << 20) >= cap, "%zu MiB served under a %zu MiB cap", taken >> 20, cap >> 20);

    errno = 0;
    CHECK(calloc(1, kBlock) == NULL && errno == ENOMEM, "calloc past the cap");
    errno = 0;
    void* big = realloc(blocks[0], 2 * kBlock);
    CHECK(big == NULL && errno == ENOMEM, "realloc past the cap");
    CHECK(((unsigned char*)blocks[0])[kBlock - 1] == 0xab, "a failed realloc left the block intact");

    // Free half; the same amount can be allocated again, and no more.
    for (size_t i = 0; i < n; i += 2) free(blocks[i]);
    size_t again = 0;
    for (size_t i = 0; i < n; i += 2) {
        blocks[i] = malloc(kBlock);
        if (blocks[i]) ++again;
    }
    CHECK(again == (n + 1) / 2, "after freeing %zu blocks, %zu came back", (n + 1) / 2, again);
    CHECK(malloc(kBlock) == NULL, "still capped after the round trip");
    for (size_t i = 0; i < n; ++i) free(blocks[i]);

    check_still_running();
    return check_finish();
}
