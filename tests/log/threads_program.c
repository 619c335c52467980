// Four threads allocate and free with a known count, half of the frees on another thread's
// blocks, for test_end_to_end.py.
//
//   threads_program K
//
// Each worker t mallocs K blocks and frees the first half itself; after a barrier it frees
// the second half of worker (t + 1) % 4's blocks. So every worker makes K mallocs and K
// frees (K even); K = 0 creates and joins the threads only (the runtime's baseline).
// No stdio: its buffers would be runtime blocks in the log.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kThreads = 4, kMaxK = 100000 };

static int g_k;
static void** g_blocks[kThreads];
static pthread_barrier_t g_barrier;

static void die(const char* what) {
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    _exit(3);
}

static void* worker(void* arg) {
    int t = (int)(long)arg;
    void** mine = g_blocks[t];
    for (int i = 0; i < g_k; ++i) {
        mine[i] = malloc(24 + (size_t)(i % 61) * 8);
        if (!mine[i]) die("malloc failed");
        memset(mine[i], t, 24);
    }
    for (int i = 0; i < g_k / 2; ++i) free(mine[i]);
    pthread_barrier_wait(&g_barrier);
    void** next = g_blocks[(t + 1) % kThreads];
    for (int i = g_k / 2; i < g_k; ++i) {
        if (((unsigned char*)next[i])[0] != (t + 1) % kThreads) die("block overwritten");
        free(next[i]);
    }
    return NULL;
}

int main(int argc, char** argv) {
    g_k = argc > 1 ? atoi(argv[1]) : 1000;
    if (g_k < 0 || g_k > kMaxK || g_k % 2) die("usage: threads_program K (even, <= 100000)");
    // The pointer arrays are static, not malloc'd: only the workers' own calls reach the log.
    static void* storage[kThreads][kMaxK];
    for (int t = 0; t < kThreads; ++t) g_blocks[t] = storage[t];
    pthread_barrier_init(&g_barrier, NULL, kThreads);
    pthread_t th[kThreads];
    for (long t = 0; t < kThreads; ++t)
        if (pthread_create(&th[t], NULL, worker, (void*)t)) die("pthread_create");
    for (int t = 0; t < kThreads; ++t) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&g_barrier);
    return 0;
}
