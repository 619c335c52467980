// Loaded with RTLD_DEEPBIND by foreign.c: its own scope comes first, so `malloc` here is
// glibc's, not the preload's. Its blocks are "foreign" to the chain.
#include <stdlib.h>
#include <string.h>

void* deep_strdup(const char* s) {
    char* p = malloc(strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}
