/* run_peak REPORT CMD [ARG...]: run CMD, write "ns=<wall> maxrss_kb=<peak> status=<code>" to
 * REPORT. The peak is wait4's ru_maxrss: the largest of CMD and the children it waited for
 * (g++ -> cc1plus). Linux carries the peak across fork and exec, so the parent must be small:
 * hence C rather than the Python runner. The allocator under test is passed as BENCH_PRELOAD
 * and becomes LD_PRELOAD only in the child, so this parent runs on plain glibc. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s REPORT CMD [ARG...]\n", argv[0]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        const char *lib = getenv("BENCH_PRELOAD");
        if (lib && *lib)
            setenv("LD_PRELOAD", lib, 1);
        unsetenv("BENCH_PRELOAD");
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    fprintf(f, "ns=%lld maxrss_kb=%ld status=%d\n", ns, ru.ru_maxrss, code);
    fclose(f);
    return code;
}
