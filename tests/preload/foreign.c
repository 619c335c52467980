// Pointers the chain did not make — from __libc_malloc, or from a library loaded with
// RTLD_DEEPBIND that binds to glibc's malloc — must reach glibc when the program frees,
// reallocates or measures them, never a free list nor jemalloc. Usage: foreign path/to/libforeign_lib.so
#include "check.h"

#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>

extern void* __libc_malloc(size_t);

int main(int argc, char** argv) {
    for (size_t n = 1; n <= (1 << 20); n = n * 3 + 1) {
        char* p = __libc_malloc(n);
        if (!CHECK(p != NULL, "__libc_malloc(%zu)", n)) continue;
        memset(p, 7, n);
        CHECK(malloc_usable_size(p) >= n, "usable size of a glibc block of %zu", n);
        char* q = realloc(p, n * 2);
        if (CHECK(q != NULL, "realloc of a glibc block of %zu", n)) {
            CHECK(q[0] == 7 && q[n - 1] == 7, "realloc kept the glibc block's contents");
            free(q);
        }
    }
    void* pointers[1000];
    for (int i = 0; i < 1000; ++i) pointers[i] = __libc_malloc(16 + i % 64);
    for (int i = 0; i < 1000; ++i) free(pointers[i]);
    // Our blocks are still fine after all that.
    for (int i = 0; i < 1000; ++i) pointers[i] = malloc(16 + i % 64);
    for (int i = 0; i < 1000; ++i) free(pointers[i]);

    if (CHECK(argc > 1, "usage: foreign LIBRARY")) {
        void* lib = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
        if (CHECK(lib != NULL, "dlopen deepbind: %s", dlerror())) {
            char* (*deep_strdup)(const char*) = (char* (*)(const char*))dlsym(lib, "deep_strdup");
            for (int i = 0; i < 1000 && deep_strdup; ++i) {
                char* s = deep_strdup("made by glibc's malloc");
                CHECK(s && strcmp(s, "made by glibc's malloc") == 0, "deepbind strdup");
                free(s);
            }
            dlclose(lib);
        }
    }
    printf("%lu passed, %lu failed\n", check_passed_count, check_failed_count);
    return check_failed_count != 0;
}
