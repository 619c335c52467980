// A child signals its parent the moment it runs, and the parent's handler forks (the pattern
// of glibc's tst-mallocfork, from glibc bug 838). The signal often arrives while the parent is
// still inside its own fork(): past the pthread_atfork prepare handlers, before the parent
// handlers. An allocator that holds its locks across fork then forks again from the handler,
// on the same thread, and its prepare handler waits for locks that thread already holds.
// The grandchild ends with exit(0), not _exit, so the allocator's exit path (statistics, log
// footer) runs in a process forked from a signal handler as well.
// Each of ROUNDS rounds (default 300) makes one child and one grandchild; both have their own
// watchdog and the parent checks both exit statuses.
// Usage: fork_notify [ROUNDS]
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"

static volatile sig_atomic_t handled, failures;

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0) {
        watchdog_child(3);
        free(malloc(100));
        exit(0);
    }
    if (pid < 0 || !fault_reap(pid)) failures = failures + 1;
    handled = handled + 1;
    errno = saved;
}

int main(int argc, char** argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 300;
    // Nothing is buffered on stdout before the end: exit() in the children would flush it.
    setvbuf(stdout, NULL, _IONBF, 0);
    watchdog_start("fork_notify", "rounds", 5);
    fault_handle(SIGUSR1, on_usr1);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t parent = getpid();
    uint64_t rng = 838;
    for (int r = 0; r < rounds; ++r) {
        // Allocation around the fork, so the signal may also land in malloc or free.
        void* p = malloc(1 + fault_below(&rng, 5000));
        fault_where = "fork() (the child's signal may land inside it)";
        pid_t pid = fork();
        if (pid == 0) {
            watchdog_child(3);
            // Sometimes at once, sometimes a moment later: the signal lands at different
            // points of the parent's fork() and what follows it.
            for (volatile unsigned spin = fault_below(&rng, 4) ? 0 : 20000; spin; --spin) {
            }
            kill(parent, SIGUSR1);
            exit(0);
        }
        fault_where = "free/waitpid after fork()";
        free(p);
        if (pid < 0 || !fault_reap(pid)) failures = failures + 1;
        fault_progress = r + 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fork_notify: %d rounds, %d forks from the handler, in %.2f s, %d failed\n", rounds,
           (int)handled, secs, (int)failures);
    return failures == 0 ? 0 : 1;
}
