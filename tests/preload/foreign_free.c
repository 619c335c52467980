// free() and realloc() of an address that no allocator made: the main thread's stack, a
// global, an mmap()ed page, a pointer into the middle of one. The process must abort, and
// under the preload with a line that names chainalloc and the pointer (foreign_free.sh checks
// the line and the signal). Before the bad call, blocks of every kind are freed, so the checks
// are seen to pass glibc's own blocks (a false alarm would kill correct programs).
//
// Usage: foreign_free KIND, KIND one of stack, global, mmap, mmap-inner, unaligned, realloc.
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static char global_block[64] __attribute__((aligned(16)));

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    char stack_block[64] __attribute__((aligned(16)));
    char* mapping = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) return 2;
    for (size_t i = 0; i < 2000; ++i) {
        free(malloc(i * 97));
        free(memalign(4096, 5000 + i));   // page-aligned glibc blocks
        free(memalign(64, 200000 + i));   // mmapped, over-aligned
        free(realloc(malloc(40), 300000 + i));
    }
    const char* kind = argv[1];
    void* volatile bad = NULL;
    if (!strcmp(kind, "stack")) bad = stack_block;
    else if (!strcmp(kind, "global")) bad = global_block;
    else if (!strcmp(kind, "mmap")) bad = mapping;
    else if (!strcmp(kind, "mmap-inner")) bad = mapping + 4096;
    else if (!strcmp(kind, "unaligned")) bad = global_block + 1;
    else if (!strcmp(kind, "realloc")) {
        void* volatile q = realloc(stack_block, 100);
        printf("realloc of a stack address returned %p\n", q);
        return 0;
    } else {
        return 2;
    }
    free(bad);
    printf("free(%p) returned\n", bad);
    return 0;
}
