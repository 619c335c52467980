// A program of known truth for sampling by bytes (test_end_to_end.py, SampledLog): about
// 200 MiB requested in a mix of sizes from 16 bytes to 1 MiB, one clear peak, and known
// leaks, the same on every run (a fixed pseudo-random sequence). The truth is read from an
// unsampled run; sampled runs must estimate it.
//
//   1. churn: two threads each allocate and free ~64 MiB of 16..4096-byte blocks, a few
//      live at a time, some grown by realloc (sampling must follow blocks across threads)
//   2. leaks: 8 blocks of 1 MiB and 512 KiB of 100..2000-byte blocks, never freed
//   3. peak: ~64 MiB of 8..64 KiB blocks and 16 blocks of 1 MiB built up, then all freed:
//      the estimated live bytes rise to one maximum and fall
//
// No stdio (its buffer would be one more block); -fno-builtin keeps every call a call.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char* what) {
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    _exit(3);
}

static void* check(void* p, size_t n) {
    if (!p) die("allocation failed");
    ((volatile unsigned char*)p)[n - 1] = 1;  // one touch: the test is about the log, not RAM
    return p;
}

static uint64_t next(uint64_t* state) {  // xorshift64: the same sizes on every run
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

#define CHURN_BYTES (64u << 20)
#define KEEP 16

static void* churn(void* arg) {
    uint64_t state = (uint64_t)(uintptr_t)arg;
    void* keep[KEEP] = {0};
    size_t done = 0;
    for (unsigned i = 0; done < CHURN_BYTES; ++i) {
        size_t n = 16 + next(&state) % 4081;
        unsigned k = i % KEEP;
        free(keep[k]);
        keep[k] = check(malloc(n), n);
        done += n;
        if (i % 8 == 0) {  // grow: a free of the old block and an allocation of the new
            keep[k] = check(realloc(keep[k], 2 * n), 2 * n);
            done += 2 * n;
        }
    }
    for (unsigned k = 0; k < KEEP; ++k) free(keep[k]);
    return NULL;
}

int main(void) {
    pthread_t helper;
    if (pthread_create(&helper, NULL, churn, (void*)(uintptr_t)0x9E3779B97F4A7C15ull)) die("pthread_create");
    churn((void*)(uintptr_t)0xD1B54A32D192ED03ull);
    if (pthread_join(helper, NULL)) die("pthread_join");

    uint64_t state = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < 8; ++i) check(malloc(1 << 20), 1 << 20);  // leaked
    for (size_t leaked = 0; leaked < (512u << 10);) {
        size_t n = 100 + next(&state) % 1901;
        check(calloc(1, n), n);  // leaked
        leaked += n;
    }

    static void* live[4096];
    size_t count = 0, bytes = 0;
    while (bytes < (64u << 20) && count < 4096) {
        size_t n = (8 << 10) + next(&state) % (56 << 10);
        live[count++] = check(malloc(n), n);
        bytes += n;
    }
    void* big[16];
    for (int i = 0; i < 16; ++i) big[i] = check(malloc(1 << 20), 1 << 20);
    for (int i = 0; i < 16; ++i) free(big[i]);
    for (size_t i = 0; i < count; ++i) free(live[i]);
    return 0;
}
