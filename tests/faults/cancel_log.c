// pthread_cancel (deferred) of threads that malloc and free in a loop, while an allocation log
// is being written. malloc and free are not cancellation points, so a cancelled thread may only
// end at the program's own cancellation points (here nanosleep). An allocator that writes its
// log with write() from inside free() turns free() into one: the pending cancel fires there,
// in the middle of the allocator, with its log lock held; the forced unwind then meets
// noexcept code (std::terminate) or leaves the lock held (every other thread hangs).
// Each round starts 4 threads, lets them run a moment, cancels and joins them, and checks they
// ended cancelled; ROUNDS rounds (default 60, so 240 cancellations). Run it under a proxy chain
// whose log goes to /dev/null, to stderr, or through a pipe:
// Usage: cancel_log [ROUNDS] [keep|null|pipe]
//   keep: stderr as given; null: stderr -> /dev/null (for log=-, so the test log stays small);
//   pipe: stderr -> a pipe drained by a reader thread (for log=-: the log's write() goes to a
//   pipe that fills and blocks now and then).
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"

enum { WORKERS = 4, SLOTS = 32 };

struct table {
    void* p[SLOTS];
    volatile int at_cancel_point;  // set only around the program's own cancellation point
};

static int cancelled_elsewhere;

// Runs as a cancelled thread unwinds. It must be at nanosleep: anywhere else means a cancel
// acted inside malloc or free (and the table may be half-updated, so it is left alone).
static void release(void* arg) {
    struct table* t = arg;
    if (!t->at_cancel_point) {
        if (__atomic_fetch_add(&cancelled_elsewhere, 1, __ATOMIC_RELAXED) < 5)
            fault_write("cancel_log: FAIL: a thread was cancelled outside its cancellation point "
                        "(inside malloc or free)\n");
        return;
    }
    for (int i = 0; i < SLOTS; ++i) free(t->p[i]);
}

// Never returns: the thread ends only by cancellation, at nanosleep.
static void churn(struct table* t, uint64_t rng) {
    for (unsigned i = 1;; ++i) {
        unsigned s = i % SLOTS;
        free(t->p[s]);
        size_t n = 1 + fault_below(&rng, fault_below(&rng, 8) == 0 ? 40000 : 400);
        t->p[s] = malloc(n);
        if (!t->p[s]) abort();
        *(char*)t->p[s] = 1;
        // The program's own cancellation point, rare enough that the log fills its buffer
        // (and calls write()) many times in between.
        if (i % 1024 == 0) {
            struct timespec ts = {0, 1000};
            t->at_cancel_point = 1;
            nanosleep(&ts, NULL);
            t->at_cancel_point = 0;
        }
    }
}

static void* worker(void* arg) {
    struct table t;
    memset(&t, 0, sizeof t);
    // Frees the table when the thread is cancelled: at nanosleep the table is consistent.
    pthread_cleanup_push(release, &t);
    churn(&t, (uintptr_t)arg * 7919 + 1);
    pthread_cleanup_pop(1);
    return NULL;
}

// stderr may be /dev/null or the pipe here, so an abort (std::terminate from a cancel that
// fired inside the allocator) is reported on the original stderr before it takes effect.
static void on_abort(int sig) {
    fault_write("cancel_log: FAIL: SIGABRT (std::terminate?) while ");
    fault_write(fault_where ? fault_where : "starting");
    fault_write(", after ");
    fault_write_num(fault_progress);
    fault_write(" cancelled threads: a cancel acted inside malloc/free?\n");
    signal(sig, SIG_DFL);
    raise(sig);
}

static int pipe_read_end = -1;

static void* drain(void* arg) {
    (void)arg;
    char buf[4096];
    ssize_t r;
    while ((r = read(pipe_read_end, buf, sizeof buf)) != 0)
        if (r < 0 && errno != EINTR) break;
    return NULL;
}

int main(int argc, char** argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    const char* how = argc > 2 ? argv[2] : "keep";
    int pipe_mode = strcmp(how, "pipe") == 0;
    if (rounds < 1 || (!pipe_mode && strcmp(how, "keep") != 0 && strcmp(how, "null") != 0)) {
        fprintf(stderr, "usage: cancel_log [ROUNDS] [keep|null|pipe]\n");
        return 2;
    }

    // Our own messages keep the original stderr, whatever fd 2 becomes.
    fault_fd = dup(STDERR_FILENO);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fault_fd < 0 || devnull < 0) return 1;
    pthread_t reader;
    if (strcmp(how, "null") == 0) dup2(devnull, STDERR_FILENO);
    if (pipe_mode) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) return 1;
        pipe_read_end = p[0];
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        if (pthread_create(&reader, NULL, drain, NULL) != 0) return 1;
    }
    signal(SIGABRT, on_abort);
    watchdog_start("cancel_log", "cancelled threads", 5);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t rng = 1;
    int failures = 0, cancelled = 0;
    for (int r = 0; r < rounds; ++r) {
        pthread_t t[WORKERS];
        fault_where = "starting the threads";
        for (int i = 0; i < WORKERS; ++i)
            if (pthread_create(&t[i], NULL, worker, (void*)(uintptr_t)(r * WORKERS + i + 1)) != 0) {
                fault_write("cancel_log: FAIL: pthread_create\n");
                return 1;
            }
        // Let them run 0.05 to 0.5 ms: long enough to be in their loops, with the log busy.
        struct timespec pause = {0, 50000 + (long)fault_below(&rng, 450000)};
        nanosleep(&pause, NULL);
        fault_where = "cancelling and joining the threads";
        for (int i = 0; i < WORKERS; ++i) pthread_cancel(t[i]);
        for (int i = 0; i < WORKERS; ++i) {
            void* ret = NULL;
            int rc = pthread_join(t[i], &ret);
            if (rc != 0 || ret != PTHREAD_CANCELED) {
                fault_write("cancel_log: FAIL: a thread did not end cancelled\n");
                ++failures;
            } else {
                ++cancelled;
            }
            fault_progress = cancelled;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fault_where = "shutting the pipe";
    if (pipe_mode) {
        // fd 2 was the pipe's last write end: replacing it lets the reader see end of file.
        dup2(devnull, STDERR_FILENO);
        pthread_join(reader, NULL);
    }
    alarm(0);

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    failures += cancelled_elsewhere;
    printf("cancel_log(%s): %d threads cancelled in %.2f s, %d cancelled outside their "
           "cancellation point, %d failed\n",
           how, cancelled, secs, cancelled_elsewhere, failures);
    return failures == 0 ? 0 : 1;
}
