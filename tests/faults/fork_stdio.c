// fork() while other threads are inside stdio and call malloc with stdio locks held (the
// pattern of glibc bug 19431 and its test tst-malloc-fork-deadlock). In glibc's fork the
// pthread_atfork prepare handlers run first, then fork takes stdio's list lock. An allocator
// whose prepare handler takes its own locks can therefore close a cycle:
//   forking thread: holds the allocator's locks, waits for stdio's list lock;
//   fflush(NULL):   holds the list lock, waits for the lock of a stream another thread uses;
//   getdelim etc.:  holds that stream's lock, calls malloc, waits for the allocator's locks.
// Threads here: getdelim over an fmemopen stream (mallocs for every line, stream locked),
// fflush(NULL) in a loop (list lock, then every stream's lock), fopen/fprintf/fclose of
// /dev/null (the first write mallocs the stream's buffer, stream locked), and open_memstream
// (its buffer grows with realloc under the stream lock). The
// main thread forks FORKS times (default 300); each child uses malloc and stdio, then
// _exit(0)s, and the parent checks its status. A hang trips the watchdog.
// Usage: fork_stdio [FORKS]
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"

static volatile int stop;

static int stopping(void) { return __atomic_load_n(&stop, __ATOMIC_RELAXED); }

// Lines of 1..4000 characters: getdelim's buffer starts small and is reallocated for the
// long ones, so it calls malloc and realloc while it holds the stream's lock.
static char* text;
static size_t text_len;

static void make_text(void) {
    size_t cap = 1 << 20, len = 0;
    text = malloc(cap);
    if (!text) abort();
    uint64_t rng = 19431;
    while (len + 4002 < cap) {
        size_t n = 1 + fault_below(&rng, 4000);
        memset(text + len, 'a' + (int)(n % 26), n);
        len += n;
        text[len++] = '\n';
    }
    text_len = len;
}

// Each stdio worker lives for a few dozen iterations and is then replaced by a fresh thread
// (see generations below): a new thread's allocator caches are empty and an exiting thread's
// are flushed, so these threads keep reaching the central lists while they hold stream locks,
// not just once at start-up.
enum { ITERATIONS = 40 };

static void* getdelim_worker(void* arg) {
    (void)arg;
    FILE* f = fmemopen(text, text_len, "r");
    if (!f) abort();
    for (int i = 0; i < ITERATIONS && !stopping(); ++i) {
        char* line = NULL;  // a fresh buffer each time: every line mallocs
        size_t cap = 0;
        if (getdelim(&line, &cap, '\n', f) < 0) rewind(f);
        free(line);
    }
    fclose(f);
    return NULL;
}

static void* fopen_worker(void* arg) {
    (void)arg;
    for (unsigned i = 0; i < ITERATIONS && !stopping(); ++i) {
        FILE* f = fopen("/dev/null", "w");
        if (!f) abort();
        fprintf(f, "line %u %*s\n", i, (int)(i * 70), "x");  // the first write mallocs a buffer
        fclose(f);
    }
    return NULL;
}

static void* memstream_worker(void* arg) {
    (void)arg;
    for (unsigned i = 0; i < ITERATIONS && !stopping(); ++i) {
        char* buf = NULL;
        size_t len = 0;
        FILE* f = open_memstream(&buf, &len);
        if (!f) abort();
        for (unsigned k = 0; k < 20; ++k) fprintf(f, "%u:%u %*s\n", i, k, (int)(k * 100), "y");
        fclose(f);
        free(buf);
    }
    return NULL;
}

// Runs the worker given as arg in one fresh thread after another until told to stop.
static void* generations(void* arg) {
    void* (*worker)(void*) = (void* (*)(void*))arg;
    while (!stopping()) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) != 0) abort();
        pthread_join(t, NULL);
    }
    return NULL;
}

// Holds stdio's list lock, and waits in turn for the lock of every stream.
static void* fflush_thread(void* arg) {
    (void)arg;
    while (!stopping()) fflush(NULL);
    return NULL;
}

// The child: malloc and stdio on streams of its own (the parent's streams may be locked by
// threads that do not exist here), then _exit, which flushes nothing.
static void child_work(void) {
    watchdog_child(3);
    void* p = malloc(100);
    void* q = malloc(50000);
    if (!p || !q) _exit(2);
    free(p);
    free(q);
    FILE* f = fopen("/dev/null", "w");
    if (!f) _exit(2);
    fprintf(f, "child %d\n", (int)getpid());
    fclose(f);
    char* buf = NULL;
    size_t len = 0;
    FILE* m = open_memstream(&buf, &len);
    if (!m) _exit(2);
    fprintf(m, "%0500d", 7);
    fclose(m);
    if (len != 500) _exit(2);
    free(buf);
    _exit(0);
}

int main(int argc, char** argv) {
    int target = argc > 1 ? atoi(argv[1]) : 300;
    make_text();
    watchdog_start("fork_stdio", "forks", 5);

    void* (*workers[])(void*) = {getdelim_worker, fopen_worker, memstream_worker};
    enum { N = sizeof workers / sizeof workers[0] + 1 };
    pthread_t threads[N];
    for (int i = 0; i < N; ++i) {
        int rc = i < N - 1 ? pthread_create(&threads[i], NULL, generations, (void*)workers[i])
                           : pthread_create(&threads[i], NULL, fflush_thread, NULL);
        if (rc != 0) {
            perror("fork_stdio: pthread_create");
            return 1;
        }
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int failures = 0;
    fault_where = "fork() while the stdio threads run";
    for (int k = 0; k < target; ++k) {
        pid_t pid = fork();
        if (pid == 0) child_work();
        if (pid < 0 || !fault_reap(pid)) ++failures;
        fault_progress = k + 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fault_where = "joining the stdio threads";
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < N; ++i) pthread_join(threads[i], NULL);
    alarm(0);
    free(text);

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fork_stdio: %d forks while 4 threads use stdio, in %.2f s, %d failed\n", target, secs,
           failures);
    return failures == 0 ? 0 : 1;
}
