// A tight malloc/free loop, for the big-log speed test in test_end_to_end.py.
//
//   loop_program N   N malloc + free pairs of sizes 16..1024 (2N events).
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    volatile unsigned char sink = 0;
    for (long i = 0; i < n; ++i) {
        unsigned char* p = malloc(16 + (size_t)(i * 40503 % 1009));
        if (!p) return 3;
        p[0] = (unsigned char)i;
        sink ^= p[0];
        free(p);
    }
    return sink == 255 ? 0 : 0;
}
