// A program whose leaks are made at known functions and lines, for test_stacks.py: the
// reader must name them. Each leaking call is marked `LEAK: <name>` on its line; the test
// finds the line numbers there. Built with -g -O0 and -fno-builtin (the calls stay calls,
// the frames stay frames).
//
//   stacks_program leak [N]       leak_one leaks N blocks of 1111 bytes (default 3)
//   stacks_program dlopen LIB     LIB (stacks_lib.c), dlopen'ed now, leaks 2 blocks of 2222
//   stacks_program reload A B     A leaks 2222 once, is dlclose'd; B, dlopen'ed then, leaks 3030
//   stacks_program threads        3 threads, each leaks one block of 3333 in thread_leak
//   stacks_program fork           the child leaks one block of 4444 in child_leak
//   stacks_program tree           a run of three processes: the parent and a forked child
//                                 each leak 5555 in both_leak, the child also 4444 in
//                                 child_leak, then execs `stacks_program leak 2`
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char* what) {
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    _exit(3);
}

static void* volatile g_keep;  // the compiler cannot drop a block that is stored here

__attribute__((noinline)) static void leak_one(void) {
    g_keep = malloc(1111);  // LEAK: leak_one
}

__attribute__((noinline)) static void* thread_leak(void* arg) {
    (void)arg;
    g_keep = malloc(3333);  // LEAK: thread_leak
    return NULL;
}

__attribute__((noinline)) static void child_leak(void) {
    g_keep = malloc(4444);  // LEAK: child_leak
}

// Called by both processes of `tree`: one site in two logs.
__attribute__((noinline)) static void both_leak(void) {
    g_keep = malloc(5555);  // LEAK: both_leak
}

// Freed at once: not a leak, but a site of its own in `sites`.
__attribute__((noinline)) static void churn(void) {
    for (int i = 0; i < 100; ++i) free(malloc(64));  // LEAK: churn (temporary, not leaked)
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "leak";
    churn();
    if (!strcmp(mode, "leak")) {
        int n = argc > 2 ? atoi(argv[2]) : 3;
        for (int i = 0; i < n; ++i) leak_one();
    } else if (!strcmp(mode, "dlopen")) {
        if (argc < 3) die("usage: stacks_program dlopen LIB");
        void* lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        if (!lib) die(dlerror());
        void (*lib_leak)(void) = (void (*)(void))dlsym(lib, "stacks_lib_leak");
        if (!lib_leak) die("no stacks_lib_leak");
        for (int i = 0; i < 2; ++i) lib_leak();
        // Not dlclose'd: the library's frames stay symbolizable in the log either way, as
        // its `#M` line is written before the first stack that holds them.
    } else if (!strcmp(mode, "reload")) {
        if (argc < 4) die("usage: stacks_program reload LIB LIB2");
        for (int k = 2; k < 4; ++k) {
            void* lib = dlopen(argv[k], RTLD_NOW | RTLD_LOCAL);
            if (!lib) die(dlerror());
            void (*lib_leak)(void) = (void (*)(void))dlsym(lib, "stacks_lib_leak");
            if (!lib_leak) die("no stacks_lib_leak");
            lib_leak();
            if (dlclose(lib)) die("dlclose");
        }
    } else if (!strcmp(mode, "threads")) {
        pthread_t t[3];
        for (int i = 0; i < 3; ++i)
            if (pthread_create(&t[i], NULL, thread_leak, NULL)) die("pthread_create");
        for (int i = 0; i < 3; ++i) pthread_join(t[i], NULL);
    } else if (!strcmp(mode, "fork")) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            child_leak();
            exit(0);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) die("child failed");
    } else if (!strcmp(mode, "tree")) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        both_leak();
        if (pid == 0) {
            child_leak();
            char* args[] = {argv[0], "leak", "2", NULL};
            execv(argv[0], args);
            die("execv");
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) die("child failed");
    } else {
        die("usage: stacks_program leak|dlopen LIB|reload LIB LIB2|threads|fork|tree");
    }
    return 0;
}
