// soak: a bounded, multi-threaded run that checks every heap block keeps its contents, under
// whatever malloc runs the process (glibc, or libchainalloc.so through LD_PRELOAD).
//
// Each block is filled, when it is made, with a pattern derived from its address, size and a
// per-block tag, and is checked in full before it is freed or reallocated. A block handed out
// twice, a neighbour's overrun, a realloc that loses data or a fork child that sees a torn heap
// then shows up as the first byte that differs. Around that, the run does what tends to break an
// allocator's bookkeeping:
//   - a size mix that shifts every second (tiny, small, medium, large, mixed), so the classes
//     in use change under the thread caches;
//   - cross-thread frees: blocks pass between threads through a small shared exchange;
//   - thread churn: workers end and are replaced all the time, joinable and detached, handing
//     their live blocks on as they go;
//   - cancellation: the supervisor (main) cancels workers; they stop at the nanosleep in their
//     loop, and a cleanup handler hands their blocks on, so none is lost or freed twice;
//   - fork: now and then a worker forks; the child checks that worker's blocks, allocates and
//     frees, and reports through its exit status;
// plus: calloc memory is zero, memalign/aligned_alloc/posix_memalign are aligned, and
// malloc_usable_size(p) >= n. An alarm() watchdog turns a hang into a message.
//
// Usage: soak [--seconds N] [--threads N] [--seed S] [--fork-ms N] [--allow-null]
//   --fork-ms N   a worker forks every N ms (100)
//   --allow-null  a NULL result is accepted if errno is ENOMEM (for capped chains)
// Prints one summary line and exits 0; or prints the first failure and exits 1 (2: a hang).
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    TABLE = 64,             // blocks a worker holds at most
    EXCHANGE = 64,          // slots of the shared exchange
    MAX_THREADS = 64,
    MAX_DETACHED = 2,       // detached workers alive at once
    PHASE_MS = 1000,        // how long one size mix lasts
    TICK_US = 5000,         // the supervisor's period
    WATCHDOG_S = 30,        // no progress for this long is a hang
    CHILD_WATCHDOG_S = 10,
    CHILD_STEPS = 300,
};
// Byte caps keep the large phase (up to 4 MiB a block) within a few hundred MiB.
#define THREAD_BYTES ((size_t)16 << 20)
#define EXCHANGE_BYTES ((size_t)32 << 20)

static unsigned run_seconds = 10, n_threads = 4, fork_every_ms = 100;
static uint64_t seed;
static bool allow_null;
static volatile sig_atomic_t in_child;

// ------------------------------------------------------------------ failure and watchdog

static _Noreturn void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char* fmt, ...) {
    // Only the first failure is printed: later ones are mostly its consequences.
    static atomic_flag once = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&once))
        for (;;) pause();
    char msg[1024];
    int len = snprintf(msg, sizeof msg, "soak: FAIL (seed %" PRIu64 "%s): ", seed,
                       in_child ? ", in a fork child" : "");
    va_list ap;
    va_start(ap, fmt);
    len += vsnprintf(msg + len, sizeof msg - (size_t)len - 1, fmt, ap);
    va_end(ap);
    if (len > (int)sizeof msg - 2) len = (int)sizeof msg - 2;
    msg[len++] = '\n';
    // write and _exit: other threads keep allocating, so no stdio locks and no atexit work.
    if (write(1, msg, (size_t)len) < 0) _exit(1);
    _exit(1);
}

// For signal handlers, which may not call printf: their messages are formatted up front.
static void put(const char* s) {
    ssize_t ignored = write(1, s, strlen(s));
    (void)ignored;
}

static char watchdog_msg[256], child_watchdog_msg[256];
static const char* volatile supervisor_doing = "starting";

static void on_alarm(int sig) {
    (void)sig;
    if (in_child) {
        put(child_watchdog_msg);
        _exit(3);
    }
    put(watchdog_msg);
    put((const char*)supervisor_doing);
    put(")\n");
    _exit(2);
}

// A crash (an abort from the allocator, a fault) gets a line saying where the worker was; the
// signal then does what it would have done (SA_RESETHAND), so the exit status still shows it.
static char crash_msg[128];
static _Thread_local const struct worker* self;  // the worker this thread runs, or NULL

static void on_crash(int sig);

// ------------------------------------------------------------------ random numbers, patterns

static uint64_t mix(uint64_t x) {
    x ^= x >> 31;
    x *= 0x7FB5D329728EA185ull;
    x ^= x >> 27;
    x *= 0x81DADEF4BC2DD44Dull;
    return x ^ (x >> 33);
}

static uint64_t rnd(uint64_t* s) { return mix(*s += 0x9E3779B97F4A7C15ull); }
static size_t below(uint64_t* s, size_t n) { return (size_t)(rnd(s) % n); }

// The address is in the seed, so a block that turns up at another address (a stale copy,
// a realloc that moved it without copying) fails, and so does one block overwritten by another.
static uint64_t block_seed(const void* p, size_t n, uint64_t tag) {
    return mix((uintptr_t)p ^ mix(n ^ mix(tag)));
}

// Word i of a block; cheap, because blocks of megabytes are written and read all the time.
static inline uint64_t pattern_word(uint64_t s, size_t i) {
    return s ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
}

// __builtin_memcpy: -fno-builtin would otherwise turn each 8-byte copy into a call.
static void pattern_fill(unsigned char* p, size_t n, uint64_t s) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = pattern_word(s, i / 8);
        __builtin_memcpy(p + i, &w, 8);
    }
    if (i < n) {
        uint64_t w = pattern_word(s, i / 8);
        __builtin_memcpy(p + i, &w, n - i);
    }
}

static unsigned char pattern_byte(uint64_t s, size_t off) {
    uint64_t w = pattern_word(s, off / 8);
    unsigned char b[8];
    __builtin_memcpy(b, &w, 8);
    return b[off % 8];
}

// Offset of the first byte of [0, n) that differs from the pattern, or n.
static size_t pattern_mismatch(const unsigned char* p, size_t n, uint64_t s) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = pattern_word(s, i / 8), got;
        __builtin_memcpy(&got, p + i, 8);
        if (got != w) break;
    }
    for (; i < n; ++i)
        if (p[i] != pattern_byte(s, i)) return i;
    return n;
}

// ------------------------------------------------------------------ blocks and workers

enum how { BY_MALLOC, BY_CALLOC, BY_REALLOC, BY_MEMALIGN, BY_ALIGNED_ALLOC, BY_POSIX_MEMALIGN };
static const char* const how_name[] = {"malloc", "calloc", "realloc", "memalign",
                                       "aligned_alloc", "posix_memalign"};

struct block {
    unsigned char* p;  // NULL: empty slot
    size_t n;
    uint64_t tag;
    unsigned char how;  // which call made it, for the failure message
};

struct worker {
    pthread_t thread;
    unsigned id;
    bool detached;
    long lifetime;  // operations before it ends by itself
    long done;
    uint64_t rng;
    struct block tab[TABLE];
    size_t live_bytes;  // of tab
    // Set around each allocator call: a cancel must never land inside one (the allocator
    // would be left half-way), so the cleanup handler fails if it finds this set.
    const char* volatile in_call;
    atomic_bool finished;
    // Counted here, added to the totals now and then.
    unsigned long ops, checked, nulls;
};

static atomic_ulong total_ops, total_nulls, forks, threads_created, detached_created,
    cancellations;
static atomic_ullong bytes_checked;
static atomic_long live_blocks;  // made minus freed: 0 at the end, or a block was lost
static atomic_int phase, detached_live;
static atomic_bool stopping, fork_wanted;

static void flush_counts(struct worker* w) {
    atomic_fetch_add(&total_ops, w->ops);
    atomic_fetch_add(&bytes_checked, w->checked);
    atomic_fetch_add(&total_nulls, w->nulls);
    w->ops = w->checked = w->nulls = 0;
}

// Checks len bytes at p against b's pattern; p differs from b->p when realloc moved it.
static void verify(struct worker* w, const struct block* b, const unsigned char* p, size_t len,
                   const char* when) {
    uint64_t s = block_seed(b->p, b->n, b->tag);
    size_t off = pattern_mismatch(p, len, s);
    w->checked += len;
    if (off < len)
    {
        char moved[40] = "";
        if (p != b->p) snprintf(moved, sizeof moved, " (moved to %p)", (const void*)p);
        fail("%s: block %p%s of %zu bytes from %s, tag %#" PRIx64
             ": offset %zu holds 0x%02x, expected 0x%02x",
             when, (void*)b->p, moved, b->n, how_name[b->how], b->tag, off, p[off],
             pattern_byte(s, off));
    }
}

// A NULL result: a failure, unless --allow-null and errno says ENOMEM.
static void null_result(struct worker* w, const char* call, size_t n, int err) {
    if (!allow_null) fail("%s(%zu) returned NULL (errno %d)", call, n, err);
    if (err != ENOMEM) fail("%s(%zu) returned NULL with errno %d, not ENOMEM", call, n, err);
    ++w->nulls;
}

// What any object of n bytes may need: the fundamental alignment, or less for tiny blocks.
static size_t natural_align(size_t n) {
    return n >= 16 ? 16 : n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1;
}

static void check_new(struct worker* w, const unsigned char* p, size_t n, size_t align,
                      const char* call) {
    if ((uintptr_t)p % align) fail("%s(%zu) = %p: not aligned to %zu", call, n, (void*)p, align);
    w->in_call = "malloc_usable_size";
    size_t usable = malloc_usable_size((void*)p);
    w->in_call = NULL;
    if (usable < n) fail("%s(%zu) = %p: malloc_usable_size is %zu", call, n, (void*)p, usable);
}

// Makes a block of about n bytes, by a call picked at random; false if it got NULL.
static bool new_block(struct worker* w, struct block* b, size_t n) {
    size_t r = below(&w->rng, 20), align = natural_align(n), k = 1;
    enum how how = r < 12   ? BY_MALLOC
                   : r < 15 ? BY_CALLOC
                   : r < 17 ? BY_MEMALIGN
                   : r < 19 ? BY_POSIX_MEMALIGN
                            : BY_ALIGNED_ALLOC;
    if (how >= BY_MEMALIGN) align = (size_t)8 << below(&w->rng, 10);  // 8 .. 4096
    if (how == BY_ALIGNED_ALLOC) n = (n + align - 1) / align * align;  // C11 asks for a multiple
    if (how == BY_CALLOC) {
        k = 1 + below(&w->rng, 4);  // k elements: calloc multiplies
        n = (n + k - 1) / k * k;
    }
    unsigned char* p = NULL;
    errno = 0;
    w->in_call = how_name[how];
    switch (how) {
    case BY_MALLOC: p = malloc(n); break;
    case BY_CALLOC: p = calloc(k, n / k); break;
    case BY_MEMALIGN: p = memalign(align, n); break;
    case BY_ALIGNED_ALLOC: p = aligned_alloc(align, n); break;
    case BY_POSIX_MEMALIGN: {
        void* q;
        int rc = posix_memalign(&q, align, n);  // reports through its result, not errno
        p = rc == 0 ? q : NULL;
        errno = rc;
        break;
    }
    case BY_REALLOC: break;
    }
    int err = errno;
    w->in_call = NULL;
    if (!p) {
        null_result(w, how_name[how], n, err);
        return false;
    }
    check_new(w, p, n, align, how_name[how]);
    if (how == BY_CALLOC) {
        for (size_t i = 0; i < n; ++i)
            if (p[i]) fail("calloc(%zu, %zu) = %p: byte %zu is 0x%02x, not 0", k, n / k, (void*)p,
                           i, p[i]);
        w->checked += n;
    }
    *b = (struct block){p, n, rnd(&w->rng), (unsigned char)how};
    pattern_fill(p, n, block_seed(p, n, b->tag));
    atomic_fetch_add(&live_blocks, 1);
    return true;
}

static void drop_block(struct worker* w, struct block b, const char* when) {
    verify(w, &b, b.p, b.n, when);
    atomic_fetch_sub(&live_blocks, 1);
    w->in_call = "free";
    free(b.p);
    w->in_call = NULL;
}

// realloc keeps the old prefix; on NULL the old block must be untouched and still ours.
static void resize_block(struct worker* w, struct block* b, size_t n) {
    verify(w, b, b->p, b->n, "before realloc");
    errno = 0;
    w->in_call = "realloc";
    unsigned char* p = realloc(b->p, n);
    int err = errno;
    w->in_call = NULL;
    if (!p) {
        null_result(w, "realloc", n, err);
        verify(w, b, b->p, b->n, "after a failed realloc");
        return;
    }
    verify(w, b, p, b->n < n ? b->n : n, "after realloc, the old prefix");
    check_new(w, p, n, natural_align(n), "realloc");
    w->live_bytes = w->live_bytes - b->n + n;
    *b = (struct block){p, n, rnd(&w->rng), BY_REALLOC};
    pattern_fill(p, n, block_seed(p, n, b->tag));
}

// ------------------------------------------------------------------ the exchange

// Blocks in transit between threads: whoever takes one owns it (checks it, frees it).
static struct {
    pthread_mutex_t lock;
    struct block slot[EXCHANGE];
    size_t bytes;
} ex = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool exchange_put(struct worker* w, struct block b) {
    size_t start = below(&w->rng, EXCHANGE);
    bool put = false;
    pthread_mutex_lock(&ex.lock);
    for (size_t k = 0; k < EXCHANGE && !put && ex.bytes + b.n <= EXCHANGE_BYTES; ++k) {
        struct block* s = &ex.slot[(start + k) % EXCHANGE];
        if (!s->p) {
            *s = b;
            ex.bytes += b.n;
            put = true;
        }
    }
    pthread_mutex_unlock(&ex.lock);
    return put;
}

static bool exchange_take(struct worker* w, struct block* b) {
    size_t start = below(&w->rng, EXCHANGE);
    bool got = false;
    pthread_mutex_lock(&ex.lock);
    for (size_t k = 0; k < EXCHANGE && !got; ++k) {
        struct block* s = &ex.slot[(start + k) % EXCHANGE];
        if (s->p) {
            *b = *s;
            s->p = NULL;
            ex.bytes -= b->n;
            got = true;
        }
    }
    pthread_mutex_unlock(&ex.lock);
    return got;
}

// ------------------------------------------------------------------ sizes and steps

enum { TINY, SMALL, MEDIUM, LARGE, MIXED, PHASES };

static size_t size_in(uint64_t* r, int ph) {
    switch (ph) {
    case TINY: return 1 + below(r, 64);
    case SMALL: return 65 + below(r, 1024 - 64);
    case MEDIUM: return 1025 + below(r, 32768 - 1024);
    case LARGE: {  // 64 KiB .. 4 MiB, each doubling as likely as the next
        size_t lo = (size_t)1 << (16 + below(r, 6));
        return lo + below(r, lo + 1);
    }
    default: {  // what programs tend to do: mostly small, some large
        size_t x = below(r, 100);
        return size_in(r, x < 55 ? TINY : x < 85 ? SMALL : x < 97 ? MEDIUM : LARGE);
    }
    }
}

// One random operation on a random slot of the worker's table.
static void step(struct worker* w) {
    struct block* b = &w->tab[below(&w->rng, TABLE)];
    size_t n = size_in(&w->rng, atomic_load_explicit(&phase, memory_order_relaxed));
    size_t r = below(&w->rng, 100);
    ++w->ops;
    if (r < 40) {  // allocate, replacing what the slot held
        if (b->p) {
            w->live_bytes -= b->n;
            drop_block(w, *b, "before free");
            b->p = NULL;
        }
        if (w->live_bytes + n <= THREAD_BYTES && new_block(w, b, n)) w->live_bytes += b->n;
    } else if (r < 55) {  // free
        if (b->p) {
            w->live_bytes -= b->n;
            drop_block(w, *b, "before free");
            b->p = NULL;
        }
    } else if (r < 70) {  // realloc, up or down
        if (b->p && w->live_bytes - b->n + n <= THREAD_BYTES) resize_block(w, b, n);
    } else if (r < 78) {  // look at a held block: catches corruption long before its free
        if (b->p) verify(w, b, b->p, b->n, "while held");
    } else if (in_child) {  // the exchange's lock may have been held by a thread at fork time
    } else if (r < 89) {   // hand a block to whichever thread takes it
        if (b->p && exchange_put(w, *b)) {
            w->live_bytes -= b->n;
            b->p = NULL;
        }
    } else if (!b->p) {  // take one from another thread
        struct block x;
        if (exchange_take(w, &x)) {
            if (w->live_bytes + x.n <= THREAD_BYTES) {
                *b = x;
                w->live_bytes += x.n;
            } else {
                drop_block(w, x, "before a cross-thread free");
            }
        }
    }
}

// ------------------------------------------------------------------ fork

// The child: the forking thread's blocks were whole when it forked, so they must be whole in
// the child; its allocator must work (whatever locks other threads held at fork time) and take
// back blocks made before the fork. It reports through its exit status.
static _Noreturn void child(struct worker* w) {
    in_child = 1;
    alarm(CHILD_WATCHDOG_S);
    for (int i = 0; i < TABLE; ++i)
        if (w->tab[i].p) verify(w, &w->tab[i], w->tab[i].p, w->tab[i].n, "inherited by a fork child");
    for (int i = 0; i < CHILD_STEPS; ++i) step(w);
    for (int i = 0; i < TABLE; ++i)
        if (w->tab[i].p) drop_block(w, w->tab[i], "before free in a fork child");
    _exit(0);
}

static void fork_and_check(struct worker* w) {
    // waitpid is a cancellation point: a cancel there would leave the child unchecked.
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) child(w);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) fail("waitpid(%d): %s", (int)pid, strerror(errno));
    if (WIFSIGNALED(st))
        fail("fork child %d (of worker %u) was killed by signal %d (%s)", (int)pid, w->id,
             WTERMSIG(st), strsignal(WTERMSIG(st)));
    if (WEXITSTATUS(st) != 0)
        fail("fork child %d (of worker %u) exited with status %d (%s)", (int)pid, w->id,
             WEXITSTATUS(st),
             WEXITSTATUS(st) == 1   ? "a failed check, printed above"
             : WEXITSTATUS(st) == 3 ? "its watchdog fired: it hung"
                                    : "unexpected");
    atomic_fetch_add(&forks, 1);
    pthread_setcancelstate(old, NULL);
}

// ------------------------------------------------------------------ worker threads

// Runs as a worker ends, normally or cancelled: its blocks go to the exchange for other threads
// to check and free (or are freed here when it is full), so none is lost or owned twice.
static void worker_end(void* arg) {
    struct worker* w = arg;
    if (w->in_call)
        fail("worker %u was cancelled inside %s(): the allocator reached a cancellation point",
             w->id, w->in_call);
    for (int i = 0; i < TABLE; ++i) {
        struct block* b = &w->tab[i];
        if (b->p && !exchange_put(w, *b)) drop_block(w, *b, "before free by an ending worker");
        b->p = NULL;
    }
    w->live_bytes = 0;
    flush_counts(w);
    atomic_store(&w->finished, true);
}

static void* worker_main(void* arg) {
    struct worker* w = arg;
    bool detached = w->detached;
    self = w;
    pthread_cleanup_push(worker_end, w);
    while (w->done++ < w->lifetime && !atomic_load_explicit(&stopping, memory_order_relaxed)) {
        step(w);
        if (w->done % 32 == 0) {
            if (w->done % 256 == 0) flush_counts(w);
            if (atomic_load_explicit(&fork_wanted, memory_order_relaxed) &&
                atomic_exchange(&fork_wanted, false))
                fork_and_check(w);
            // The cancellation point: a cancelled worker stops here, between two operations.
            struct timespec zero = {0, 0};
            nanosleep(&zero, NULL);
        }
    }
    pthread_cleanup_pop(1);
    if (detached) {  // nobody joins it: it frees itself, and then says it is gone
        self = NULL;
        free(w);
        atomic_fetch_sub(&detached_live, 1);
    }
    return NULL;
}

static uint64_t super_rng;
static unsigned next_id;

static struct worker* start_worker(bool detached) {
    struct worker* w = calloc(1, sizeof *w);
    if (!w) fail("calloc(worker) returned NULL");
    w->id = ++next_id;
    w->detached = detached;
    w->rng = mix(seed ^ w->id);
    // Short lives for detached workers, so they come and go throughout the run.
    w->lifetime = detached ? 500 + (long)below(&super_rng, 5000)
                           : 2000 + (long)below(&super_rng, 40000);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (detached) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        atomic_fetch_add(&detached_live, 1);
        atomic_fetch_add(&detached_created, 1);
    }
    int rc = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc) fail("pthread_create: %s", strerror(rc));
    atomic_fetch_add(&threads_created, 1);
    return w;
}

static void join_worker(struct worker* w, bool cancelled) {
    void* ret;
    int rc = pthread_join(w->thread, &ret);
    if (rc) fail("pthread_join(worker %u): %s", w->id, strerror(rc));
    if (ret == PTHREAD_CANCELED) {
        if (!cancelled) fail("worker %u ended cancelled, but nobody cancelled it", w->id);
        atomic_fetch_add(&cancellations, 1);
    }
    free(w);
}

static void on_crash(int sig) {
    put(crash_msg);
    put(in_child ? ", in a fork child): SIG" : "): SIG");
    put(sigabbrev_np(sig));
    if (self) {
        char id[16];
        int i = (int)sizeof id;
        unsigned v = self->id;
        id[--i] = 0;
        do id[--i] = (char)('0' + v % 10);
        while (v /= 10);
        put(" in worker ");
        put(id + i);
        put(self->in_call ? ", inside " : ", between allocator calls");
        if (self->in_call) put(self->in_call), put("()");
    } else {
        put(" in the supervisor");
    }
    put("\n");
    raise(sig);
}

// ------------------------------------------------------------------ main: the supervisor

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static unsigned long parse_num(const char* opt, const char* s, unsigned long max) {
    char* end;
    errno = 0;
    unsigned long long v = strtoull(s ? s : "", &end, 0);
    if (!s || !*s || *end || errno || v > max) {
        fprintf(stderr, "soak: %s wants a number up to %lu, got '%s'\n", opt, max, s ? s : "");
        exit(2);
    }
    return (unsigned long)v;
}

static void parse_args(int argc, char** argv) {
    seed = mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seconds")) run_seconds = (unsigned)parse_num(a, v, 86400), ++i;
        else if (!strcmp(a, "--threads")) n_threads = (unsigned)parse_num(a, v, MAX_THREADS), ++i;
        else if (!strcmp(a, "--seed")) seed = parse_num(a, v, ~0ul), ++i;
        else if (!strcmp(a, "--fork-ms")) fork_every_ms = (unsigned)parse_num(a, v, 3600000), ++i;
        else if (!strcmp(a, "--allow-null")) allow_null = true;
        else {
            fprintf(stderr,
                    "usage: soak [--seconds N] [--threads N] [--seed S] [--fork-ms N] "
                    "[--allow-null]\n");
            exit(2);
        }
    }
    if (n_threads == 0) n_threads = 1;
}

int main(int argc, char** argv) {
    parse_args(argc, argv);
    snprintf(watchdog_msg, sizeof watchdog_msg,
             "soak: FAIL (seed %" PRIu64 "): watchdog: no progress for %d s, a hang "
             "(the supervisor was ",
             seed, WATCHDOG_S);
    snprintf(child_watchdog_msg, sizeof child_watchdog_msg,
             "soak: FAIL (seed %" PRIu64 ", in a fork child): watchdog: the child hung for %d s\n",
             seed, CHILD_WATCHDOG_S);
    snprintf(crash_msg, sizeof crash_msg, "soak: FAIL (seed %" PRIu64, seed);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct sigaction crash = {.sa_handler = on_crash, .sa_flags = SA_RESETHAND | SA_NODEFER};
    for (int sig = 0; sig < 5; ++sig)
        sigaction((int[]){SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}[sig], &crash, NULL);
    alarm(WATCHDOG_S);

    super_rng = mix(seed ^ 0x5eed);
    struct worker* slot[MAX_THREADS];
    for (unsigned i = 0; i < n_threads; ++i) slot[i] = start_worker(false);

    uint64_t t0 = now_ms(), last_fork = t0, end = t0 + (uint64_t)run_seconds * 1000, t;
    unsigned long seen_ops = 0;
    while ((t = now_ms()) < end) {
        atomic_store(&phase, (int)((t - t0) / PHASE_MS % PHASES));
        if (t - last_fork >= fork_every_ms) {
            atomic_store(&fork_wanted, true);
            last_fork = t;
        }
        supervisor_doing = "sleeping";
        usleep(TICK_US);
        supervisor_doing = "joining a worker that ended";
        for (unsigned i = 0; i < n_threads; ++i)
            if (atomic_load(&slot[i]->finished)) {
                join_worker(slot[i], false);
                slot[i] = start_worker(false);
            }
        if (below(&super_rng, 4) == 0) {
            unsigned i = (unsigned)below(&super_rng, n_threads);
            supervisor_doing = "joining a cancelled worker";
            pthread_cancel(slot[i]->thread);
            join_worker(slot[i], true);
            slot[i] = start_worker(false);
        }
        supervisor_doing = "starting a detached worker";
        if (atomic_load(&detached_live) < MAX_DETACHED && below(&super_rng, 2) == 0)
            start_worker(true);
        // Re-armed only while workers get work done: a deadlock among them stops the clock.
        unsigned long ops = atomic_load(&total_ops);
        if (ops != seen_ops) {
            seen_ops = ops;
            alarm(WATCHDOG_S);
        }
    }

    atomic_store(&stopping, true);
    alarm(WATCHDOG_S);
    supervisor_doing = "joining the workers at the end";
    for (unsigned i = 0; i < n_threads; ++i) join_worker(slot[i], false);
    supervisor_doing = "waiting for the detached workers at the end";
    while (atomic_load(&detached_live) > 0) usleep(1000);
    supervisor_doing = "freeing what was left in the exchange";
    static struct worker last;  // the supervisor's own counters
    struct block b;
    while (exchange_take(&last, &b)) drop_block(&last, b, "before free at the end");
    flush_counts(&last);
    long lost = atomic_load(&live_blocks);
    if (lost) fail("%ld blocks %s", lost < 0 ? -lost : lost,
                   lost > 0 ? "were never freed (lost)" : "were freed twice");
    alarm(0);

    double secs = (double)(now_ms() - t0) / 1000;
    unsigned long ops = atomic_load(&total_ops);
    printf("soak: ok: seed %" PRIu64 ", %u threads, %.1f s: %lu operations (%.0f/s), %lu forks, "
           "%lu threads created (%lu detached), %lu cancellations, %.2f GiB checked, "
           "%lu NULL results\n",
           seed, n_threads, secs, ops, ops / secs, atomic_load(&forks),
           atomic_load(&threads_created), atomic_load(&detached_created),
           atomic_load(&cancellations), (double)atomic_load(&bytes_checked) / (1 << 30),
           atomic_load(&total_nulls));
    return 0;
}
