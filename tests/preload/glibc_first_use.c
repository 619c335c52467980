// glibc's malloc, behind the preload, is set up as glibc's own start-up leaves it.
//
// glibc initialises its malloc on first use without a lock (ptmalloc_init), trusting that the
// first malloc of a process runs before any thread exists. Behind the preload the first call
// to glibc's malloc is whichever request first falls through to `system`, often from several
// threads at once: each then took main_arena as its own, and the second to exit aborted in
// __malloc_arena_thread_freeres ("a->attached_threads > 0"). The preload now initialises it at
// start-up, on the loading thread. Checked two ways:
// - deterministically: a thread's glibc malloc comes first, yet the main thread still owns
//   main_arena, so its small block lies in the brk heap, not in a thread arena's mapping;
// - as users met it: processes whose threads all make their first large request at once
//   (each a fresh process, since the setup happens once) exit cleanly.
#include "check.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

void* __libc_malloc(size_t);
void __libc_free(void*);

extern char end;  // the end of the program's data: the brk heap starts above it

static pthread_barrier_t go;

// Stays alive (attached to its arena) until the main thread has made its own block.
static void* first_glibc_block(void* arg) {
    (void)arg;
    void* p = __libc_malloc(100);
    pthread_barrier_wait(&go);
    pthread_barrier_wait(&go);
    __libc_free(p);
    return NULL;
}

static void* first_large_request(void* arg) {
    (void)arg;
    pthread_barrier_wait(&go);
    char* p = malloc(1 << 20);  // past the free lists' classes: glibc's under the default chain
    if (p) p[0] = 1;
    free(p);
    return NULL;
}

enum { kThreads = 4, kRuns = 100 };

int main(int argc, char** argv) {
    if (argc > 1) {  // one run of the race, in a fresh process
        pthread_t t[kThreads];
        pthread_barrier_init(&go, NULL, kThreads);
        for (int i = 0; i < kThreads; ++i) pthread_create(&t[i], NULL, first_large_request, NULL);
        for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
        return 0;
    }

    pthread_t t;
    pthread_barrier_init(&go, NULL, 2);
    pthread_create(&t, NULL, first_glibc_block, NULL);
    pthread_barrier_wait(&go);
    char* p = __libc_malloc(100);
    CHECK(p > &end && p < (char*)sbrk(0),
          "the main thread's glibc block %p is in the brk heap (%p..%p): main_arena is its own",
          (void*)p, (void*)&end, sbrk(0));
    pthread_barrier_wait(&go);
    pthread_join(t, NULL);
    __libc_free(p);
    pthread_barrier_destroy(&go);

    int failed = 0;
    for (int i = 0; i < kRuns; ++i) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "race", (char*)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    }
    CHECK(failed == 0, "%d of %d processes racing to glibc's malloc failed", failed, kRuns);

    return check_finish();
}
