// Libraries with thread-locals loaded, used and unloaded again and again, by two threads at
// once. A load or unload elsewhere makes a thread's TLS vector stale; its next touch of a
// thread-local goes through __tls_get_addr, which frees the unloaded copy's block from inside
// the loader (_dl_update_slotinfo) before it clears its entry. The block is the chain's (the
// loader allocates it with malloc), so a proxy logs that free; the log touches thread-locals
// of libraries loaded after start (spdlog's, libunwind's), and when another thread had loaded
// or unloaded meanwhile, that touch updated the same vector again and freed the same block a
// second time: the preload aborted with "double free" (bootstrap-proxy, about 1 run in 7). The
// preload now holds such frees until the request that ran the log is done (runtime.cpp).
#include "check.h"

#include <dlfcn.h>
#include <pthread.h>

enum { kRounds = 300 };

static const char* g_plugin;

static void* reload(void* arg) {
    int seed = (int)(long)arg;
    for (int round = 0; round < kRounds; ++round) {
        void* h = dlopen(g_plugin, RTLD_NOW);
        if (!CHECK(h != NULL, "dlopen: %s", dlerror())) break;
        int (*check)(int) = (int (*)(int))dlsym(h, "plugin_check");
        if (CHECK(check != NULL, "dlsym plugin_check")) CHECK(check(seed + round), "plugin_check, round %d", round);
        char* block = malloc(64);  // the chain stays sound: blocks come and go
        if (CHECK(block != NULL, "malloc in round %d", round)) memset(block, round, 64);
        free(block);
        dlclose(h);
    }
    return NULL;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tls_reload PLUGIN\n");
        return 2;
    }
    g_plugin = argv[1];
    pthread_t t[2];
    for (long i = 0; i < 2; ++i) pthread_create(&t[i], NULL, reload, (void*)(i * 1000 + 1));
    for (int i = 0; i < 2; ++i) pthread_join(t[i], NULL);
    check_still_running();
    return check_finish();
}
