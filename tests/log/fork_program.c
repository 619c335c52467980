// A parent and a forked child with known, different allocation counts, for
// test_end_to_end.py.
//
//   fork_program        parent: 10 mallocs (3 kept across the fork, 7 freed), a 0.3 s sleep
//                       (so the child's times show whose start they count from), fork, wait,
//                       then 5 mallocs and 8 frees (its 5 and the 3 kept);
//                       child: 7 mallocs, 7 frees, and one free of a block inherited from the
//                       parent (an unknown pointer in the child's log); exit(0).
//   fork_program none   allocates nothing and does not fork (the runtime's baseline).
//
// The child's pid goes to stdout (write(), no stdio) so the test can find its log.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char* what) {
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    _exit(3);
}

static void* get(size_t n) {
    void* p = malloc(n);
    if (!p) die("malloc failed");
    memset(p, 1, n);
    return p;
}

int main(int argc, char** argv) {
    if (argc > 1 && !strcmp(argv[1], "none")) return 0;

    void* before[10];
    for (int i = 0; i < 10; ++i) before[i] = get(100 + 10 * (size_t)i);
    for (int i = 3; i < 10; ++i) free(before[i]);

    usleep(300 * 1000);
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        void* mine[7];
        for (int i = 0; i < 7; ++i) mine[i] = get(300 + (size_t)i);
        for (int i = 0; i < 7; ++i) free(mine[i]);
        free(before[0]);  // inherited: the parent's log has its malloc, the child's does not
        exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
        die("child failed");

    void* after[5];
    for (int i = 0; i < 5; ++i) after[i] = get(500 + (size_t)i);
    for (int i = 0; i < 5; ++i) free(after[i]);
    for (int i = 0; i < 3; ++i) free(before[i]);

    // Written with write(): the pid in decimal, no stdio buffer.
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)child);
    (void)!write(1, text, (size_t)n);
    return 0;
}
