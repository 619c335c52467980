// The library stacks_program dlopen's after start (test_stacks.py): its leak is made in a
// module the process did not have when its log began.
#include <stdlib.h>

static void* volatile g_lib_keep;

__attribute__((noinline)) static void lib_leak_here(void) {
    g_lib_keep = malloc(2222);  // LEAK: lib_leak_here
}

void stacks_lib_leak(void) { lib_leak_here(); }
