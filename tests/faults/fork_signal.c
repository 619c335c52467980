// fork() from a signal handler that interrupted malloc, free or realloc (the pattern of glibc's
// tst-mallocfork2). Programs do this (crash reporters, supervisors that fork on a signal), and
// glibc allows it in a single-threaded process. The danger for an allocator is its fork
// handler: the interrupted code may hold one of its locks, and the handler runs on the very
// thread that holds it, so waiting for that lock waits forever.
//
// Usage: fork_signal process|thread [FORKS]
//   process: single-threaded; a separate process sends SIGUSR1 as fast as it can while this
//            one churns malloc/free/realloc over small, medium and large sizes.
// (A signal that lands inside fork() itself is fork_notify.c's case.)
//   thread:  a second thread sends SIGUSR1 to the main thread with pthread_kill; the main
//            thread churns small blocks in batches, which under a freelist keeps refilling
//            its thread cache from the central lists (with tiny caches, all the time), so
//            signals land while a central lock is held.
// The handler forks; the child allocates a little and _exit(0)s; the handler reaps it and
// checks its status. Passes after FORKS forks (default 300); a hang trips the watchdog.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"

// The child allocates this size; the main loop never asks for sizes in [CHILD_LO, CHILD_HI],
// so neither glibc's tcache bin nor a freelist class the child uses is one the interrupted code
// may be halfway through changing. (glibc skips its locks in a single-threaded process, so a
// child allocating from a structure caught mid-update could crash it; that is not the bug
// under test.)
enum { CHILD_SIZE = 56, CHILD_LO = 41, CHILD_HI = 64, CHILD_BLOCKS = 3 };

static volatile sig_atomic_t forks_done;
static volatile sig_atomic_t failures;

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0) {
        watchdog_child(3);
        void* p[CHILD_BLOCKS];
        for (int i = 0; i < CHILD_BLOCKS; ++i) {
            p[i] = malloc(CHILD_SIZE);
            if (!p[i]) _exit(2);
            memset(p[i], i, CHILD_SIZE);
        }
        for (int i = 0; i < CHILD_BLOCKS; ++i) free(p[i]);
        _exit(0);
    }
    if (pid < 0) {
        fault_write(fault_name);
        fault_write(": FAIL: fork failed\n");
        failures = failures + 1;
    } else if (!fault_reap(pid)) {
        failures = failures + 1;
    }
    forks_done = forks_done + 1;
    fault_progress = forks_done;
    errno = saved;
}

static size_t pick_size(uint64_t* rng) {
    for (;;) {
        size_t r = fault_below(rng, 100), n;
        if (r < 75) n = 1 + fault_below(rng, 512);         // thread-cache sizes
        else if (r < 95) n = 513 + fault_below(rng, 32768);  // freelist's larger classes
        else n = 32768 + fault_below(rng, 200000);           // past the freelist: the next layer
        if (n < CHILD_LO || n > CHILD_HI) return n;
    }
}

// ---------------------------------------------------------------- process mode

static void run_process_mode(int target) {
    pid_t parent = getpid();
    int go[2];
    if (pipe(go) != 0) {
        perror("fork_signal: pipe");
        exit(1);
    }
    pid_t sender = fork();
    if (sender == 0) {
        // Dies with the parent, whatever happens to it.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        // Waits for the parent to be out of this fork() first: a signal that lands inside
        // fork is fork_notify's case; this test is about signals that land in malloc.
        char byte;
        if (read(go[0], &byte, 1) != 1) _exit(0);
        for (;;) {
            if (kill(parent, SIGUSR1) != 0) _exit(0);
            for (volatile int spin = 0; spin < 2000; ++spin) {
            }
        }
    }
    if (sender < 0) {
        perror("fork_signal: fork (sender)");
        exit(1);
    }
    if (write(go[1], "g", 1) != 1) exit(1);

    enum { SLOTS = 1000 };
    static void* slots[SLOTS];
    uint64_t rng = 0x5eed;
    fault_where = "malloc/free/realloc in the main loop";
    for (unsigned step = 1; forks_done < target; ++step) {
        // Now and then free everything: the thread cache overflows into the central lists and
        // then refills from them, so the allocator keeps taking its central locks (not only
        // while the caches first fill).
        if (step % 4096 == 0)
            for (int k = 0; k < SLOTS; ++k) {
                free(slots[k]);
                slots[k] = NULL;
            }
        size_t i = fault_below(&rng, SLOTS), n = pick_size(&rng);
        if (slots[i] && fault_below(&rng, 4) == 0) {
            void* q = realloc(slots[i], n);
            if (!q) abort();
            slots[i] = q;
        } else {
            free(slots[i]);
            slots[i] = malloc(n);
            if (!slots[i]) abort();
        }
        ((char*)slots[i])[0] = 1;
        ((char*)slots[i])[n - 1] = 1;
    }
    kill(sender, SIGKILL);
    int status;
    while (waitpid(sender, &status, 0) < 0 && errno == EINTR) {
    }
    for (int i = 0; i < SLOTS; ++i) free(slots[i]);
}

// ---------------------------------------------------------------- thread mode

static pthread_t main_thread;
static volatile int stop_sender;

static void* sender_thread(void* arg) {
    (void)arg;
    while (!__atomic_load_n(&stop_sender, __ATOMIC_RELAXED)) {
        pthread_kill(main_thread, SIGUSR1);
        for (volatile int spin = 0; spin < 2000; ++spin) {
        }
    }
    return NULL;
}

// Small sizes, none in the child's range. Batches of 7: glibc keeps up to 7 blocks per size
// in its lock-free per-thread cache, so glibc itself never holds a lock here (fork in a signal
// handler of a multi-threaded process is only safe while the allocator holds none), while a
// freelist with a cache smaller than the batch must go to its central lists every time.
static const size_t batch_sizes[] = {16, 24, 32, 72, 96, 120, 160, 200, 256, 320, 400};
enum { BATCH = 7, N_BATCH_SIZES = sizeof batch_sizes / sizeof batch_sizes[0] };

static void churn_batch(size_t n) {
    void* p[BATCH];
    for (int i = 0; i < BATCH; ++i) {
        p[i] = malloc(n);
        if (!p[i]) abort();
        ((char*)p[i])[0] = 1;
    }
    for (int i = 0; i < BATCH; ++i) free(p[i]);
}

static void run_thread_mode(int target) {
    // Warm up every size before any signal: the first round fills glibc's caches.
    for (int i = 0; i < N_BATCH_SIZES; ++i) churn_batch(batch_sizes[i]);

    main_thread = pthread_self();
    pthread_t t;
    if (pthread_create(&t, NULL, sender_thread, NULL) != 0) {
        perror("fork_signal: pthread_create");
        exit(1);
    }
    fault_where = "malloc/free of small batches in the main thread";
    for (unsigned k = 0; forks_done < target; ++k) churn_batch(batch_sizes[k % N_BATCH_SIZES]);
    __atomic_store_n(&stop_sender, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "process";
    int target = argc > 2 ? atoi(argv[2]) : 300;
    int thread_mode = strcmp(mode, "thread") == 0;
    if (!thread_mode && strcmp(mode, "process") != 0) {
        fprintf(stderr, "usage: fork_signal process|thread [FORKS]\n");
        return 2;
    }
    // Stock the child's size before any signal, so the child is served from the cache.
    void* stock[7];
    for (int i = 0; i < 7; ++i) stock[i] = malloc(CHILD_SIZE);
    for (int i = 0; i < 7; ++i) free(stock[i]);

    watchdog_start(thread_mode ? "fork_signal(thread)" : "fork_signal(process)",
                   "forks from the signal handler", 5);
    fault_handle(SIGUSR1, on_usr1);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (thread_mode)
        run_thread_mode(target);
    else
        run_process_mode(target);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    signal(SIGUSR1, SIG_IGN);
    alarm(0);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fork_signal(%s): %d forks from the signal handler in %.2f s, %d failed\n", mode,
           (int)forks_done, secs, (int)failures);
    return failures == 0 ? 0 : 1;
}
