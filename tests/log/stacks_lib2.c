// A second library for stacks_program's `reload` mode (test_stacks.py): loaded after
// stacks_lib.so was unloaded, most likely at the same addresses, so its frames must not be
// taken for stacks_lib.so's.
#include <stdlib.h>

static void* volatile g_lib2_keep;

__attribute__((noinline)) static void other_leak_here(void) {
    g_lib2_keep = malloc(3030);  // LEAK: other_leak_here
}

__attribute__((noinline)) static void other_leak_there(void) { other_leak_here(); }

void stacks_lib_leak(void) { other_leak_there(); }
