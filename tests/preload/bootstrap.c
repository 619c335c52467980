// The allocator's first moments and odd callers: allocation in constructors (a library's, then
// ours at priority 101) before main, threads racing on their first malloc, dlopen racing in
// several threads (the loader allocates, and a plugin's TLS is malloc'd inside
// __tls_get_addr), and allocation in destructors after main.
// Usage: bootstrap [PLUGIN.so] (default: libbootstrap_plugin.so beside this program).
// Prints one line per failed check, then "N passed, M failed"; exits 0 only if none failed
// (a failure in the late destructor prints its own line and exits 1).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

char* bootstrap_lib_block(size_t* size);  // bootstrap_lib.c, a linked shared library

enum { EARLY = 64 };
static unsigned char* early_block[EARLY];
static int early_null, early_misaligned;

// Priority 101 runs first among this program's constructors, after the linked libraries'.
__attribute__((constructor(101))) static void early_allocations(void) {
    for (int i = 0; i < EARLY; ++i) {
        size_t n = (size_t)i * 37 + 1;
        void* tmp = calloc(1, n);
        free(tmp);
        early_block[i] = malloc(n);
        if (!early_block[i]) {
            ++early_null;
            continue;
        }
        if ((uintptr_t)early_block[i] % 16) ++early_misaligned;
        pattern_fill(early_block[i], n, (uint64_t)i);
    }
    void* a = aligned_alloc(256, 1000);  // the aligned path early too
    if (!a || (uintptr_t)a % 256) ++early_misaligned;
    free(a);
}

static void test_early_blocks(void) {
    CHECK(early_null == 0, "%d allocations in a priority-101 constructor returned NULL",
          early_null);
    CHECK(early_misaligned == 0, "%d misaligned allocations in a constructor", early_misaligned);
    int corrupt = 0;
    for (int i = 0; i < EARLY; ++i) {
        size_t n = (size_t)i * 37 + 1;
        if (early_block[i] && !pattern_ok(early_block[i], n, (uint64_t)i)) ++corrupt;
        // Grow some before freeing: a block from before main must move like any other.
        if (early_block[i] && i % 3 == 0) {
            unsigned char* g = realloc(early_block[i], n * 50);
            if (g) {
                if (!pattern_ok(g, n, (uint64_t)i)) ++corrupt;
                early_block[i] = g;
            }
        }
        CHECK(!early_block[i] || malloc_usable_size(early_block[i]) >= n,
              "constructor block %d usable size too small", i);
        free(early_block[i]);
    }
    CHECK(corrupt == 0, "%d blocks made in a constructor corrupted by main", corrupt);

    size_t size = 0;
    char* lib = bootstrap_lib_block(&size);
    if (CHECK(lib != NULL, "the linked library's constructor got NULL from malloc")) {
        int ok = 1;
        for (size_t i = 0; i < size; ++i) ok = ok && lib[i] == 'L';
        CHECK(ok, "block made in the linked library's constructor corrupted");
        CHECK(malloc_usable_size(lib) >= size, "library block usable size too small");
        free(lib);
    }
}

// ---------------------------------------------------------------- first malloc races

enum { RACERS = 8 };
static pthread_barrier_t start_line;

struct racer {
    int id;
    int bad;         // NULL or corrupted
    int misaligned;  // not 16-byte aligned
};

// Every thread's first allocation at the same moment: per-thread state must be set up safely.
static void* racer(void* a) {
    struct racer* r = a;
    pthread_barrier_wait(&start_line);
    void* p[200];
    for (int i = 0; i < 200; ++i) {
        size_t n = (size_t)(i * 13 + r->id) % 2000 + 1;
        p[i] = malloc(n);
        if (!p[i]) {
            ++r->bad;
            continue;
        }
        if ((uintptr_t)p[i] % 16) ++r->misaligned;
        pattern_fill(p[i], n, (uint64_t)(r->id * 1000 + i));
    }
    for (int i = 0; i < 200; ++i) {
        size_t n = (size_t)(i * 13 + r->id) % 2000 + 1;
        if (p[i] && !pattern_ok(p[i], n, (uint64_t)(r->id * 1000 + i))) ++r->bad;
        free(p[i]);
    }
    return NULL;
}

static void test_first_malloc_race(void) {
    for (int round = 0; round < 20; ++round) {
        pthread_t t[RACERS];
        struct racer r[RACERS];
        pthread_barrier_init(&start_line, NULL, RACERS);
        for (int i = 0; i < RACERS; ++i) {
            r[i] = (struct racer){i, 0, 0};
            if (pthread_create(&t[i], NULL, racer, &r[i]) != 0) abort();
        }
        int bad = 0, misaligned = 0;
        for (int i = 0; i < RACERS; ++i) {
            pthread_join(t[i], NULL);
            bad += r[i].bad;
            misaligned += r[i].misaligned;
        }
        pthread_barrier_destroy(&start_line);
        CHECK(bad == 0, "round %d: %d NULL or corrupted blocks in threads racing on first malloc",
              round, bad);
        CHECK(misaligned == 0, "round %d: %d misaligned blocks in threads racing on first malloc",
              round, misaligned);
    }
}

// ---------------------------------------------------------------- dlopen races

static char plugin_path[PATH_MAX];

struct opener {
    int id;
    int failures;
    char error[200];
};

static void note(struct opener* o, const char* what) {
    if (!o->failures++) snprintf(o->error, sizeof o->error, "%s", what ? what : "?");
}

static void* opener(void* a) {
    struct opener* o = a;
    pthread_barrier_wait(&start_line);
    for (int k = 0; k < 20; ++k) {
        void* m = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (!m) {
            note(o, dlerror());
            continue;
        }
        double (*cosine)(double) = (double (*)(double))dlsym(m, "cos");
        if (!cosine || cosine(0.0) != 1.0) note(o, "cos from dlopened libm is wrong");
        dlclose(m);

        void* plug = dlopen(plugin_path, RTLD_NOW | RTLD_LOCAL);
        if (!plug) {
            note(o, dlerror());
            continue;
        }
        int (*check)(int) = (int (*)(int))dlsym(plug, "plugin_check");
        if (!check || !check(o->id * 20 + k + 1)) note(o, "plugin_check failed");
        // Allocate between the loader's own allocations.
        char* s = strdup(plugin_path);
        if (!s || strcmp(s, plugin_path) != 0) note(o, "strdup between dlopens");
        free(s);
        dlclose(plug);
    }
    return NULL;
}

static void test_dlopen_race(void) {
    enum { OPENERS = 4 };
    pthread_t t[OPENERS];
    struct opener o[OPENERS];
    pthread_barrier_init(&start_line, NULL, OPENERS);
    for (int i = 0; i < OPENERS; ++i) {
        o[i] = (struct opener){.id = i};
        if (pthread_create(&t[i], NULL, opener, &o[i]) != 0) abort();
    }
    for (int i = 0; i < OPENERS; ++i) {
        pthread_join(t[i], NULL);
        CHECK(o[i].failures == 0, "dlopen thread %d: %d failures, first: %s", i, o[i].failures,
              o[i].error);
    }
    pthread_barrier_destroy(&start_line);
}

// ---------------------------------------------------------------- after main

static unsigned char* survivor;  // made in main, checked and freed after main returns

static void late_check(void) {
    int bad = 0;
    if (!survivor || !pattern_ok(survivor, 5000, 77)) ++bad;
    free(survivor);
    char* again = malloc(100);  // allocating after main, as atexit handlers do
    if (!again) ++bad;
    else memset(again, 1, 100);
    free(again);
    if (bad) {
        printf("FAIL bootstrap.c: allocation after main failed\n");
        fflush(stdout);
        _exit(1);
    }
}

__attribute__((destructor(101))) static void late_destructor(void) { late_check(); }

static void at_exit_handler(void) {
    void* p = calloc(10, 10);
    if (!p) {
        printf("FAIL bootstrap.c: calloc in an atexit handler returned NULL\n");
        fflush(stdout);
        _exit(1);
    }
    free(p);
}

int main(int argc, char** argv) {
    if (argc > 1) {
        snprintf(plugin_path, sizeof plugin_path, "%s", argv[1]);
    } else {
        // Beside this program, as the build puts it.
        ssize_t n = readlink("/proc/self/exe", plugin_path, sizeof plugin_path - 64);
        if (n < 0) n = 0;
        plugin_path[n] = 0;
        char* slash = strrchr(plugin_path, '/');
        strcpy(slash ? slash + 1 : plugin_path, "libbootstrap_plugin.so");
    }
    CHECK(access(plugin_path, R_OK) == 0, "plugin %s not found", plugin_path);
    test_early_blocks();
    test_first_malloc_race();
    test_dlopen_race();
    survivor = malloc(5000);
    if (survivor) pattern_fill(survivor, 5000, 77);
    atexit(at_exit_handler);
    return check_finish();
}
