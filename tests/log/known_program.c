// A program whose allocation log is known in advance, for test_end_to_end.py.
//
//   known_program none    does nothing: its log is the runtime's own share (the baseline)
//   known_program leak    the phases below; 3 x 1000 and 2 x 5000 bytes are never freed
//   known_program clean   the same, and frees those five blocks at the end
//
// The counts are written out in test_end_to_end.py (KNOWN_*); change both together. No
// stdio before exit: a stdio buffer would be one more runtime block in the log. Built with
// -fno-builtin, so that every malloc/free pair below stays a pair of calls.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char* what) {
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    _exit(3);
}

// Keeps the compiler from proving a block unused.
static volatile unsigned char g_sink;
static void touch(void* p, size_t n) {
    if (!p) die("allocation failed");
    memset(p, 0x5a, n);
    g_sink = ((unsigned char*)p)[n - 1];
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "leak";
    if (!strcmp(mode, "none")) return 0;
    int clean = !strcmp(mode, "clean");
    if (!clean && strcmp(mode, "leak")) die("usage: known_program none|leak|clean");

    // Leaked blocks first: they stay live under everything that follows, peak included.
    void* leaked[5];
    for (int i = 0; i < 3; ++i) touch(leaked[i] = malloc(1000), 1000);      // 3 m
    for (int i = 3; i < 5; ++i) touch(leaked[i] = malloc(5000), 5000);      // 2 m

    // 50 mallocs of assorted small sizes, all freed.
    void* small[50];
    for (int i = 0; i < 50; ++i) touch(small[i] = malloc(16 + 16 * (size_t)i), 16);  // 50 m
    for (int i = 0; i < 50; ++i) free(small[i]);                                   // 50 f

    // 20 callocs, all freed.
    void* zeroed[20];
    for (int i = 0; i < 20; ++i) {
        zeroed[i] = calloc((size_t)i + 1, 8);                                       // 20 c
        if (!zeroed[i] || ((unsigned char*)zeroed[i])[i * 8]) die("calloc not zeroed");
    }
    for (int i = 0; i < 20; ++i) free(zeroed[i]);                                  // 20 f

    // realloc: grow across classes and into the backend, shrink, one failure.
    char* r = malloc(100);                                                        // 1 m
    touch(r, 100);
    r = realloc(r, 1000);                                                         // 1 r (grow)
    touch(r, 1000);
    r = realloc(r, 50000);                                                        // 1 r (grow)
    touch(r, 50000);
    r = realloc(r, 200000);                                                       // 1 r (grow)
    touch(r, 200000);
    r = realloc(r, 3000);                                                         // 1 r (shrink)
    touch(r, 3000);
    r = realloc(r, 40);                                                           // 1 r (shrink)
    touch(r, 40);
    if (realloc(r, (size_t)1 << 62)) die("huge realloc succeeded");              // 1 r, failed
    free(r);                                                                      // 1 f
    char* fresh = realloc(NULL, 64);                  // a realloc call, served as malloc: 1 r
    touch(fresh, 64);
    free(fresh);                                                                  // 1 f
    char* gone = malloc(32);                                                      // 1 m
    touch(gone, 32);
    if (realloc(gone, 0)) die("realloc(p, 0) returned a block");  // frees: 1 f

    // Aligned: 64 and 4096 are logged as 'a'; 16 and below as plain mallocs.
    void* al[6];
    if (posix_memalign(&al[0], 64, 200)) die("posix_memalign 64");               // 1 a
    if (posix_memalign(&al[1], 4096, 1000)) die("posix_memalign 4096");          // 1 a
    al[2] = aligned_alloc(64, 640);                                               // 1 a
    al[3] = aligned_alloc(4096, 8192);                                            // 1 a
    if (posix_memalign(&al[4], 16, 48)) die("posix_memalign 16");                // 1 m
    al[5] = aligned_alloc(16, 32);                                                // 1 m
    for (int i = 0; i < 6; ++i) {
        if (!al[i]) die("aligned_alloc");
        touch(al[i], 32);
    }
    if ((uintptr_t)al[0] % 64 || (uintptr_t)al[1] % 4096 || (uintptr_t)al[2] % 64 ||
        (uintptr_t)al[3] % 4096)
        die("misaligned");
    for (int i = 0; i < 6; ++i) free(al[i]);                                     // 6 f

    // One malloc that cannot succeed (but is not above PTRDIFF_MAX, so it reaches the chain).
    if (malloc((size_t)1 << 62)) die("huge malloc succeeded");                   // 1 m, failed

    // The peak: 1 MiB while only the leaked blocks (13000 bytes) are live.
    void* big = malloc(1 << 20);                                                  // 1 m
    touch(big, 1 << 20);
    free(big);                                                                    // 1 f

    if (clean)
        for (int i = 0; i < 5; ++i) free(leaked[i]);                             // 5 f
    return 0;
}
