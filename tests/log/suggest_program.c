/* A program for `suggest --evaluate` (tests/log/test_suggest.py): it holds COUNT blocks of
 * SIZE bytes live at once, frees them, and does it ROUNDS times. With SIZE=1040 the default
 * table rounds each block up to 1280 bytes, a class of 1040 does not (the suggestion saves a
 * fifth of the heap); with SIZE=64 the default table already has the class (nothing to gain).
 * Usage: suggest_program SIZE COUNT ROUNDS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: suggest_program SIZE COUNT ROUNDS\n");
        return 2;
    }
    size_t size = strtoul(argv[1], NULL, 10);
    size_t count = strtoul(argv[2], NULL, 10);
    int rounds = atoi(argv[3]);
    char** blocks = calloc(count, sizeof *blocks);
    if (!blocks) return 1;
    for (int r = 0; r < rounds; ++r) {
        for (size_t i = 0; i < count; ++i) {
            blocks[i] = malloc(size);
            if (!blocks[i]) return 1;
            memset(blocks[i], (int)i, size);   /* touched: resident */
        }
        for (size_t i = 0; i < count; ++i) free(blocks[i]);
    }
    free(blocks);
    return 0;
}
