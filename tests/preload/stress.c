// Multi-threaded stress of whatever allocator runs the process (glibc, or an LD_PRELOAD one):
// random malloc/free/realloc with patterns, cross-thread frees, thread churn, allocation in
// TLS destructors, a thread pool made and destroyed in a loop, fork and posix_spawn while other
// threads allocate. Bounded to a few seconds on 2 cores.
// Usage: stress [THREADS] (default 4). Prints one line per failed check, then
// "N passed, M failed"; exits 0 only if none failed.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

extern char** environ;

static int n_threads = 4;

// Sizes mostly small, sometimes medium, rarely large: the mix real programs make.
static size_t random_size(uint64_t* rng) {
    size_t r = rng_below(rng, 1000);
    if (r < 800) return rng_below(rng, 512);
    if (r < 980) return rng_below(rng, 16384);
    return rng_below(rng, 300000);
}

static void xthread(void* (*fn)(void*), void* arg, pthread_t* t) {
    int rc = pthread_create(t, NULL, fn, arg);
    if (!CHECK(rc == 0, "pthread_create failed: %s", strerror(rc))) abort();
}

// ---------------------------------------------------------------- random work per thread

struct slot {
    unsigned char* p;
    size_t n;
    uint64_t seed;
};

struct churn_result {
    unsigned long corrupt, null, misaligned;
};

// One step of random work on a private table of blocks.
static void random_step(struct slot* s, int slots, uint64_t* rng, struct churn_result* res) {
    struct slot* x = &s[rng_below(rng, (size_t)slots)];
    if (x->p && !pattern_ok(x->p, x->n, x->seed)) ++res->corrupt;
    size_t n = random_size(rng);
    unsigned char* p;
    if (!x->p) {
        p = rng_below(rng, 8) == 0 ? calloc(1, n) : malloc(n);
    } else if (rng_below(rng, 2) == 0) {
        free(x->p);
        x->p = NULL;
        return;
    } else {
        p = realloc(x->p, n);
        if (p && !pattern_ok(p, x->n < n ? x->n : n, x->seed)) ++res->corrupt;
        if (!p && n == 0) {
            x->p = NULL;  // realloc(p, 0) freed it
            return;
        }
    }
    if (!p) {
        ++res->null;
        return;
    }
    if ((uintptr_t)p % 16) ++res->misaligned;
    x->p = p;
    x->n = n;
    x->seed = rng_next(rng);
    pattern_fill(p, n, x->seed);
}

static void free_slots(struct slot* s, int slots, struct churn_result* res) {
    for (int i = 0; i < slots; ++i) {
        if (s[i].p && !pattern_ok(s[i].p, s[i].n, s[i].seed)) ++res->corrupt;
        free(s[i].p);
        s[i].p = NULL;
    }
}

static void report(const char* what, const struct churn_result* r) {
    CHECK(r->corrupt == 0, "%s: %lu corrupted blocks", what, r->corrupt);
    CHECK(r->null == 0, "%s: %lu allocations returned NULL", what, r->null);
    CHECK(r->misaligned == 0, "%s: %lu blocks not 16-byte aligned", what, r->misaligned);
}

struct random_arg {
    uint64_t seed;
    long ops;
    struct churn_result res;
};

static void* random_worker(void* a) {
    struct random_arg* arg = a;
    enum { SLOTS = 1024 };
    struct slot* s = calloc(SLOTS, sizeof *s);
    if (!s) {
        ++arg->res.null;
        return NULL;
    }
    uint64_t rng = arg->seed;
    for (long i = 0; i < arg->ops; ++i) random_step(s, SLOTS, &rng, &arg->res);
    free_slots(s, SLOTS, &arg->res);
    free(s);
    return NULL;
}

static void test_random_threads(void) {
    pthread_t t[64];
    struct random_arg arg[64];
    for (int i = 0; i < n_threads; ++i) {
        arg[i] = (struct random_arg){.seed = 0x9E3779B9u * (uint64_t)(i + 1), .ops = 150000};
        xthread(random_worker, &arg[i], &t[i]);
    }
    struct churn_result total = {0, 0, 0};
    for (int i = 0; i < n_threads; ++i) {
        pthread_join(t[i], NULL);
        total.corrupt += arg[i].res.corrupt;
        total.null += arg[i].res.null;
        total.misaligned += arg[i].res.misaligned;
    }
    report("random threads", &total);
}

// ---------------------------------------------------------------- producer / consumer

// A bounded queue under one mutex; blocks made by the producer are checked and freed by the
// consumer, so every free is a free of another thread's memory.
struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct slot item[512];
    unsigned head, tail;  // head - tail = items queued
    bool done;
};

static void queue_push(struct queue* q, struct slot s) {
    pthread_mutex_lock(&q->lock);
    while (q->head - q->tail == 512) pthread_cond_wait(&q->not_full, &q->lock);
    q->item[q->head++ % 512] = s;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

static bool queue_pop(struct queue* q, struct slot* s) {
    pthread_mutex_lock(&q->lock);
    while (q->head == q->tail && !q->done) pthread_cond_wait(&q->not_empty, &q->lock);
    bool got = q->head != q->tail;
    if (got) *s = q->item[q->tail++ % 512];
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return got;
}

struct pc_arg {
    struct queue* q;
    long items;
    uint64_t seed;
    struct churn_result res;
    long consumed;
};

static void* producer(void* a) {
    struct pc_arg* arg = a;
    uint64_t rng = arg->seed;
    for (long i = 0; i < arg->items; ++i) {
        size_t n = random_size(&rng) + 1;
        unsigned char* p = malloc(n);
        if (!p) {
            ++arg->res.null;
            continue;
        }
        struct slot s = {p, n, rng_next(&rng)};
        pattern_fill(p, n, s.seed);
        queue_push(arg->q, s);
    }
    pthread_mutex_lock(&arg->q->lock);
    arg->q->done = true;
    pthread_cond_broadcast(&arg->q->not_empty);
    pthread_mutex_unlock(&arg->q->lock);
    return NULL;
}

static void* consumer(void* a) {
    struct pc_arg* arg = a;
    struct slot s;
    uint64_t rng = arg->seed ^ 0xABCDEF;
    while (queue_pop(arg->q, &s)) {
        if (!pattern_ok(s.p, s.n, s.seed)) ++arg->res.corrupt;
        // Some blocks are resized by the consumer first: a realloc of a foreign block.
        if (rng_below(&rng, 4) == 0) {
            size_t n = random_size(&rng) + 1;
            unsigned char* p = realloc(s.p, n);
            if (!p) {
                ++arg->res.null;
            } else {
                if (!pattern_ok(p, s.n < n ? s.n : n, s.seed)) ++arg->res.corrupt;
                s.p = p;
            }
        }
        free(s.p);
        ++arg->consumed;
    }
    return NULL;
}

static void test_producer_consumer(void) {
    enum { PAIRS = 2 };
    struct queue q[PAIRS];
    struct pc_arg prod[PAIRS], cons[PAIRS];
    pthread_t tp[PAIRS], tc[PAIRS];
    for (int i = 0; i < PAIRS; ++i) {
        memset(&q[i], 0, sizeof q[i]);
        pthread_mutex_init(&q[i].lock, NULL);
        pthread_cond_init(&q[i].not_empty, NULL);
        pthread_cond_init(&q[i].not_full, NULL);
        prod[i] = (struct pc_arg){.q = &q[i], .items = 100000, .seed = 77 + (uint64_t)i};
        cons[i] = (struct pc_arg){.q = &q[i], .seed = 99 + (uint64_t)i};
        xthread(consumer, &cons[i], &tc[i]);
        xthread(producer, &prod[i], &tp[i]);
    }
    struct churn_result total = {0, 0, 0};
    for (int i = 0; i < PAIRS; ++i) {
        pthread_join(tp[i], NULL);
        pthread_join(tc[i], NULL);
        CHECK(cons[i].consumed == prod[i].items - (long)prod[i].res.null,
              "consumer %d freed %ld of %ld blocks", i, cons[i].consumed, prod[i].items);
        total.corrupt += cons[i].res.corrupt;
        total.null += prod[i].res.null + cons[i].res.null;
        pthread_cond_destroy(&q[i].not_empty);
        pthread_cond_destroy(&q[i].not_full);
        pthread_mutex_destroy(&q[i].lock);
    }
    report("producer/consumer", &total);
}

// ---------------------------------------------------------------- thread churn

// Blocks left behind by threads that have exited, for the main thread to check and free.
struct leftovers {
    pthread_mutex_t lock;
    struct slot item[8192];
    int count;
    unsigned long dropped;
};

static struct leftovers left = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void leave(unsigned char* p, size_t n, uint64_t seed) {
    pthread_mutex_lock(&left.lock);
    if (left.count < 8192) {
        left.item[left.count++] = (struct slot){p, n, seed};
    } else {
        free(p);
        ++left.dropped;
    }
    pthread_mutex_unlock(&left.lock);
}

static void collect_leftovers(const char* what) {
    struct churn_result res = {0, 0, 0};
    pthread_mutex_lock(&left.lock);
    for (int i = 0; i < left.count; ++i) {
        if (!pattern_ok(left.item[i].p, left.item[i].n, left.item[i].seed)) ++res.corrupt;
        free(left.item[i].p);
    }
    left.count = 0;
    pthread_mutex_unlock(&left.lock);
    report(what, &res);
}

static void* churn_worker(void* a) {
    uint64_t rng = (uint64_t)(uintptr_t)a * 0x51ED27u + 1;
    unsigned char* mine[64];
    size_t size[64];
    uint64_t seed[64];
    for (int i = 0; i < 64; ++i) {
        size[i] = random_size(&rng);
        seed[i] = rng_next(&rng);
        mine[i] = malloc(size[i]);
        if (mine[i]) pattern_fill(mine[i], size[i], seed[i]);
    }
    for (int i = 0; i < 64; ++i) {
        if (!mine[i]) continue;
        if (i % 2) {
            free(mine[i]);
        } else {
            leave(mine[i], size[i], seed[i]);
        }
    }
    return NULL;
}

static void test_thread_churn(void) {
    for (int round = 0; round < 150; ++round) {
        pthread_t t[64];
        for (int i = 0; i < n_threads; ++i)
            xthread(churn_worker, (void*)(uintptr_t)(round * 64 + i + 1), &t[i]);
        for (int i = 0; i < n_threads; ++i) pthread_join(t[i], NULL);
        if (round % 10 == 9) collect_leftovers("thread churn");
    }
    collect_leftovers("thread churn");
}

// ---------------------------------------------------------------- TLS destructors

static pthread_key_t key_plain, key_for_tls;
static __thread unsigned char* tls_buffer;  // freed by key_for_tls's destructor
static __thread size_t tls_buffer_size;
static unsigned long destructor_runs, destructor_reruns;

// Allocates and frees during thread exit, and re-arms itself once: glibc calls destructors
// again while values remain (up to PTHREAD_DESTRUCTOR_ITERATIONS).
static void plain_destructor(void* v) {
    struct slot* s = v;
    __atomic_fetch_add(&destructor_runs, 1, __ATOMIC_RELAXED);
    if (!pattern_ok(s->p, s->n, s->seed)) CHECK(0, "TLS destructor found a corrupted block");
    unsigned char* tmp = malloc(1000);
    if (tmp) pattern_fill(tmp, 1000, 5);
    leave(s->p, s->n, s->seed);  // a block from a dying thread, freed later by main
    bool again = s->seed != 0;
    free(s);
    free(tmp);
    if (again) {
        struct slot* next = malloc(sizeof *next);
        if (!next) return;
        *next = (struct slot){malloc(77), 77, 0};
        if (!next->p) {
            free(next);
            return;
        }
        pattern_fill(next->p, 77, 0);
        __atomic_fetch_add(&destructor_reruns, 1, __ATOMIC_RELAXED);
        pthread_setspecific(key_plain, next);
    }
}

static void tls_destructor(void* v) {
    (void)v;
    __atomic_fetch_add(&destructor_runs, 1, __ATOMIC_RELAXED);
    if (tls_buffer && !pattern_ok(tls_buffer, tls_buffer_size, 11))
        CHECK(0, "__thread buffer corrupted at thread exit");
    unsigned char* grown = realloc(tls_buffer, tls_buffer_size * 4);
    if (grown) {
        if (!pattern_ok(grown, tls_buffer_size, 11)) CHECK(0, "realloc at thread exit lost data");
        tls_buffer = grown;
    }
    free(tls_buffer);
    tls_buffer = NULL;
    void* scratch[16];
    for (int i = 0; i < 16; ++i) scratch[i] = malloc((size_t)i * 64);
    for (int i = 0; i < 16; ++i) free(scratch[i]);
}

static void* tls_worker(void* a) {
    uint64_t rng = (uintptr_t)a + 1;
    struct slot* s = malloc(sizeof *s);
    if (s) {
        s->n = random_size(&rng) + 1;
        s->seed = rng_next(&rng) | 1;
        s->p = malloc(s->n);
        if (s->p) {
            pattern_fill(s->p, s->n, s->seed);
            pthread_setspecific(key_plain, s);
        } else {
            free(s);
        }
    }
    tls_buffer_size = 1 + rng_below(&rng, 20000);
    tls_buffer = malloc(tls_buffer_size);
    if (tls_buffer) pattern_fill(tls_buffer, tls_buffer_size, 11);
    pthread_setspecific(key_for_tls, (void*)1);  // any non-NULL value makes it run
    return NULL;
}

static void test_tls_destructors(void) {
    CHECK(pthread_key_create(&key_plain, plain_destructor) == 0, "pthread_key_create failed");
    CHECK(pthread_key_create(&key_for_tls, tls_destructor) == 0, "pthread_key_create failed");
    enum { ROUNDS = 60 };
    for (int round = 0; round < ROUNDS; ++round) {
        pthread_t t[64];
        for (int i = 0; i < n_threads; ++i)
            xthread(tls_worker, (void*)(uintptr_t)(round * 64 + i), &t[i]);
        for (int i = 0; i < n_threads; ++i) pthread_join(t[i], NULL);
    }
    unsigned long runs = __atomic_load_n(&destructor_runs, __ATOMIC_RELAXED);
    unsigned long reruns = __atomic_load_n(&destructor_reruns, __ATOMIC_RELAXED);
    unsigned long threads = (unsigned long)ROUNDS * (unsigned long)n_threads;
    // Each thread: the plain destructor twice (first value, then the re-armed one) and the
    // __thread one once.
    CHECK(reruns == threads, "re-armed TLS destructors: %lu, want %lu", reruns, threads);
    CHECK(runs == 3 * threads, "TLS destructor runs: %lu, want %lu", runs, 3 * threads);
    collect_leftovers("TLS destructors");
    pthread_key_delete(key_plain);
    pthread_key_delete(key_for_tls);
}

// ---------------------------------------------------------------- thread pool

// A minimal pool: workers take tasks from a list; each task frees the block the previous task
// left and leaves one of its own, so blocks hop between workers.
struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    int pending;
    bool stop;
    pthread_t t[64];
    int workers;
    struct slot baton;  // the block passed from task to task
    unsigned long corrupt, done;
};

static void pool_task(struct pool* pl, uint64_t* rng) {
    size_t n = random_size(rng) + 1;
    unsigned char* p = malloc(n);
    uint64_t seed = rng_next(rng);
    if (p) pattern_fill(p, n, seed);
    pthread_mutex_lock(&pl->lock);
    struct slot old = pl->baton;
    pl->baton = (struct slot){p, n, seed};
    if (old.p && !pattern_ok(old.p, old.n, old.seed)) ++pl->corrupt;
    ++pl->done;
    pthread_mutex_unlock(&pl->lock);
    free(old.p);
}

static void* pool_worker(void* a) {
    struct pool* pl = a;
    uint64_t rng = (uintptr_t)a ^ (uint64_t)pthread_self();
    for (;;) {
        pthread_mutex_lock(&pl->lock);
        while (!pl->pending && !pl->stop) pthread_cond_wait(&pl->work, &pl->lock);
        if (!pl->pending) {
            pthread_mutex_unlock(&pl->lock);
            return NULL;
        }
        --pl->pending;
        pthread_mutex_unlock(&pl->lock);
        pool_task(pl, &rng);
    }
}

static void test_thread_pool(void) {
    unsigned long corrupt = 0, lost = 0;
    for (int round = 0; round < 30; ++round) {
        struct pool* pl = calloc(1, sizeof *pl);
        if (!CHECK(pl != NULL, "calloc(pool) returned NULL")) return;
        pthread_mutex_init(&pl->lock, NULL);
        pthread_cond_init(&pl->work, NULL);
        pl->workers = n_threads < 3 ? 3 : n_threads;
        for (int i = 0; i < pl->workers; ++i) xthread(pool_worker, pl, &pl->t[i]);
        enum { TASKS = 400 };
        for (int k = 0; k < TASKS; ++k) {
            pthread_mutex_lock(&pl->lock);
            ++pl->pending;
            pthread_cond_signal(&pl->work);
            pthread_mutex_unlock(&pl->lock);
        }
        pthread_mutex_lock(&pl->lock);
        pl->stop = true;  // workers drain what is pending, then leave
        pthread_cond_broadcast(&pl->work);
        pthread_mutex_unlock(&pl->lock);
        for (int i = 0; i < pl->workers; ++i) pthread_join(pl->t[i], NULL);
        if (pl->baton.p && !pattern_ok(pl->baton.p, pl->baton.n, pl->baton.seed)) ++pl->corrupt;
        free(pl->baton.p);
        corrupt += pl->corrupt;
        if (pl->done != TASKS) ++lost;
        pthread_cond_destroy(&pl->work);
        pthread_mutex_destroy(&pl->lock);
        free(pl);
    }
    CHECK(corrupt == 0, "thread pool: %lu corrupted blocks", corrupt);
    CHECK(lost == 0, "thread pool: %lu rounds lost tasks", lost);
}

// ---------------------------------------------------------------- fork and posix_spawn

// Background threads that keep allocating until told to stop, so fork and posix_spawn happen
// while allocator locks are likely held.
static volatile int background_stop;

static void* background_worker(void* a) {
    struct random_arg* arg = a;
    enum { SLOTS = 256 };
    struct slot* s = calloc(SLOTS, sizeof *s);
    if (!s) return NULL;
    uint64_t rng = arg->seed;
    while (!__atomic_load_n(&background_stop, __ATOMIC_RELAXED))
        for (int i = 0; i < 64; ++i) random_step(s, SLOTS, &rng, &arg->res);
    free_slots(s, SLOTS, &arg->res);
    free(s);
    return NULL;
}

// Waits for a child with a deadline: a deadlocked child (a lock copied held) must fail the
// test, not hang it.
static int wait_with_deadline(pid_t pid, int seconds, int* status) {
    struct timespec nap = {0, 2000000};
    for (long waited = 0; waited < seconds * 500L; ++waited) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return 0;
        if (r < 0 && errno != EINTR) return -1;
        nanosleep(&nap, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return -1;
}

// In the child: free blocks the parent made before fork, then allocate a lot.
static int child_work(struct slot* inherited, int count) {
    int bad = 0;
    for (int i = 0; i < count; ++i) {
        if (inherited[i].p && !pattern_ok(inherited[i].p, inherited[i].n, inherited[i].seed))
            ++bad;
        free(inherited[i].p);
    }
    enum { SLOTS = 512 };
    struct slot* s = calloc(SLOTS, sizeof *s);
    if (!s) return 2;
    struct churn_result res = {0, 0, 0};
    uint64_t rng = (uint64_t)getpid();
    for (int i = 0; i < 20000; ++i) random_step(s, SLOTS, &rng, &res);
    free_slots(s, SLOTS, &res);
    free(s);
    // Distinct statuses say what went wrong.
    return bad ? 3 : res.corrupt ? 4 : res.null ? 5 : res.misaligned ? 6 : 0;
}

static void test_fork_and_spawn(void) {
    pthread_t t[64];
    struct random_arg arg[64];
    int bg = n_threads > 1 ? n_threads - 1 : 1;
    background_stop = 0;
    for (int i = 0; i < bg; ++i) {
        arg[i] = (struct random_arg){.seed = 1234 + (uint64_t)i};
        xthread(background_worker, &arg[i], &t[i]);
    }
    for (int round = 0; round < 8; ++round) {
        enum { KEEP = 32 };
        struct slot keep[KEEP];
        uint64_t rng = (uint64_t)round + 1;
        for (int i = 0; i < KEEP; ++i) {
            keep[i].n = random_size(&rng) + 1;
            keep[i].seed = rng_next(&rng);
            keep[i].p = malloc(keep[i].n);
            if (keep[i].p) pattern_fill(keep[i].p, keep[i].n, keep[i].seed);
        }
        fflush(stdout);  // or the child's exit would print our buffer twice
        pid_t pid = fork();
        // exit, not _exit, so the allocator's atexit paths run in the child too.
        // Child status: 3 inherited block bad, 4 corrupt, 5 NULL, 6 misaligned.
        if (pid == 0) exit(child_work(keep, KEEP));
        if (!CHECK(pid > 0, "fork failed: %s", strerror(errno))) break;
        int status = 0;
        int w = wait_with_deadline(pid, 20, &status);
        CHECK(w == 0, "forked child %d hung (killed after 20 s)", round);
        if (w == 0)
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "forked child %d: status 0x%x (exit %d, signal %d)", round, status,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        int corrupt = 0;
        for (int i = 0; i < KEEP; ++i) {
            if (keep[i].p && !pattern_ok(keep[i].p, keep[i].n, keep[i].seed)) ++corrupt;
            free(keep[i].p);
        }
        CHECK(corrupt == 0, "parent's blocks corrupted across fork %d", round);
    }
    for (int round = 0; round < 12; ++round) {
        pid_t pid;
        char* argv[] = {(char*)"true", NULL};
        int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
        if (!CHECK(rc == 0, "posix_spawn(/bin/true) failed: %s", strerror(rc))) continue;
        int status = 0;
        int w = wait_with_deadline(pid, 20, &status);
        CHECK(w == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "spawned /bin/true %d: status 0x%x", round, status);
    }
    __atomic_store_n(&background_stop, 1, __ATOMIC_RELAXED);
    struct churn_result total = {0, 0, 0};
    for (int i = 0; i < bg; ++i) {
        pthread_join(t[i], NULL);
        total.corrupt += arg[i].res.corrupt;
        total.null += arg[i].res.null;
        total.misaligned += arg[i].res.misaligned;
    }
    report("background threads during fork/spawn", &total);
}

int main(int argc, char** argv) {
    if (argc > 1) n_threads = atoi(argv[1]);
    if (n_threads < 1 || n_threads > 64) n_threads = 4;
    test_random_threads();
    test_producer_consumer();
    test_thread_churn();
    test_tls_destructors();
    test_thread_pool();
    test_fork_and_spawn();
    return check_finish();
}
