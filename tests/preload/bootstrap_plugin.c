// dlopen()ed by bootstrap from several threads at once. Its constructor allocates, and its
// __thread variable uses the general-dynamic TLS model: glibc allocates each thread's block for
// it lazily with malloc, from inside __tls_get_addr, the first time a thread touches it.
#include <stdlib.h>
#include <string.h>

static char* plugin_block;

__attribute__((constructor)) static void plugin_init(void) {
    plugin_block = malloc(512);
    if (plugin_block) memset(plugin_block, 'P', 512);
}

__attribute__((destructor)) static void plugin_fini(void) {
    free(plugin_block);
}

__thread char plugin_tls[256];

// Returns 1 if the constructor's block is intact and this thread's TLS works.
int plugin_check(int seed) {
    for (int i = 0; i < 512; ++i)
        if (!plugin_block || plugin_block[i] != 'P') return 0;
    memset(plugin_tls, seed, sizeof plugin_tls);
    char* tmp = strdup(plugin_tls[0] ? "plugin" : "zero");
    int ok = tmp != NULL && plugin_tls[255] == (char)seed;
    free(tmp);
    return ok;
}
