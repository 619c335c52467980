// Linked into bootstrap: its constructor allocates while the program's libraries are still
// being initialised, before main and before the program's own constructors.
#include <stdlib.h>
#include <string.h>

static char* made_at_load;
static size_t made_size;

__attribute__((constructor)) static void bootstrap_lib_init(void) {
    // A few sizes, and a realloc, so more than one path runs this early.
    void* scratch = malloc(10);
    free(scratch);
    made_size = 3000;
    made_at_load = malloc(100);
    if (made_at_load) {
        char* grown = realloc(made_at_load, made_size);
        if (grown) made_at_load = grown;
        else made_size = 100;
        memset(made_at_load, 'L', made_size);
    }
}

// The block made at load time: main checks its contents and frees it.
char* bootstrap_lib_block(size_t* size) {
    *size = made_size;
    return made_at_load;
}
