/* Workload: a server that is busy, then quiet. Two worker threads handle bursts of requests;
 * each request allocates a header, a body (1 KiB..256 KiB) and a few small strings, holds them
 * while up to 256 other requests of the same worker are in flight, then frees them. One request
 * in 32 opens a session (256 B..2 KiB) that lives on across bursts, up to 4096 per worker,
 * replacing the oldest. After each burst the workers idle 1 s (bench_idle_ms), then the main
 * thread reads the RSS: what a quiet server costs after a busy spell. `ns` covers the bursts. */
#include <pthread.h>
#include <string.h>

#include "bench_common.h"

enum { WORKERS = 2, ROUNDS = 3, IN_FLIGHT = 256, SESSIONS = 4096, SMALLS = 4, IDLE_MS = 1000 };
static const uint64_t base_requests = 40000; /* per worker and burst */

typedef struct {
    void *header, *body, *small[SMALLS];
    uint32_t header_len, body_len, small_len[SMALLS];
} request;

typedef struct {
    uint64_t seed, requests, sum;
    request flight[IN_FLIGHT];
    void *session[SESSIONS];
    uint32_t session_len[SESSIONS];
    uint32_t next_session;
    bench_rng r;
} worker_state;

static pthread_barrier_t gate;
static worker_state state[WORKERS];

static void *take(size_t size, uint8_t tag)
{
    void *p = malloc(size);
    if (!p)
        bench_oom("server_idle");
    bench_stamp(p, size, tag);
    return p;
}

static uint64_t finish(request *q)
{
    uint64_t sum = bench_read(q->header, q->header_len) + bench_read(q->body, q->body_len);
    free(q->header);
    free(q->body);
    for (int i = 0; i < SMALLS; ++i) {
        sum += bench_read(q->small[i], q->small_len[i]);
        free(q->small[i]);
    }
    q->header = NULL;
    return sum;
}

static void serve(worker_state *w, uint64_t id)
{
    request *q = &w->flight[id % IN_FLIGHT];
    if (q->header) /* the oldest request in flight completes */
        w->sum += finish(q);
    q->header_len = 64 + bench_below(&w->r, 193);
    q->header = take(q->header_len, (uint8_t)id);
    /* Bodies skewed small: a power of two from 1 KiB to 128 KiB, plus up to as much again. */
    q->body_len = 1024u << bench_below(&w->r, 8);
    q->body_len += bench_below(&w->r, q->body_len);
    q->body = take(q->body_len, (uint8_t)(id >> 3));
    memset(q->body, (int)(id & 0x7F), q->body_len / 4); /* a request writes part of its body */
    for (int i = 0; i < SMALLS; ++i) {
        q->small_len[i] = 8 + bench_below(&w->r, 120);
        q->small[i] = take(q->small_len[i], (uint8_t)i);
    }
    if (bench_below(&w->r, 32) == 0) {
        uint32_t s = w->next_session++ % SESSIONS;
        if (w->session[s]) {
            w->sum += bench_read(w->session[s], w->session_len[s]);
            free(w->session[s]);
        }
        w->session_len[s] = 256 + bench_below(&w->r, 1793);
        w->session[s] = take(w->session_len[s], (uint8_t)s);
    }
}

static void *worker(void *arg)
{
    worker_state *w = (worker_state *)arg;
    bench_rng_seed(&w->r, w->seed);
    uint64_t id = 0;
    for (int round = 0; round < ROUNDS; ++round) {
        pthread_barrier_wait(&gate); /* burst starts */
        for (uint64_t n = 0; n < w->requests; ++n)
            serve(w, id++);
        for (int i = 0; i < IN_FLIGHT; ++i) /* the burst drains */
            if (w->flight[i].header)
                w->sum += finish(&w->flight[i]);
        pthread_barrier_wait(&gate); /* burst over */
        bench_idle_ms(IDLE_MS);
        pthread_barrier_wait(&gate); /* idle over */
    }
    for (int s = 0; s < SESSIONS; ++s) /* shutdown closes the sessions */
        if (w->session[s]) {
            w->sum += bench_read(w->session[s], w->session_len[s]);
            free(w->session[s]);
        }
    return NULL;
}

static long rss_after_idle[ROUNDS];
static uint64_t busy_ns;

BENCH_RUN(uint64_t requests)
{
    pthread_t tid[WORKERS];
    pthread_barrier_init(&gate, NULL, WORKERS + 1);
    for (int t = 0; t < WORKERS; ++t) {
        state[t].seed = 500 + (uint64_t)t;
        state[t].requests = requests;
        if (pthread_create(&tid[t], NULL, worker, &state[t]) != 0)
            bench_oom("pthread_create");
    }
    for (int round = 0; round < ROUNDS; ++round) {
        pthread_barrier_wait(&gate);
        uint64_t t0 = bench_now_ns();
        pthread_barrier_wait(&gate);
        busy_ns += bench_now_ns() - t0;
        pthread_barrier_wait(&gate);
        rss_after_idle[round] = bench_rss_kb();
    }
    uint64_t sum = 0;
    for (int t = 0; t < WORKERS; ++t) {
        pthread_join(tid[t], NULL);
        sum += state[t].sum;
    }
    pthread_barrier_destroy(&gate);
    return sum;
}

int main(int argc, char **argv)
{
    uint64_t requests = bench_scaled(base_requests, bench_scale(argc, argv));
    uint64_t sum = bench_run(requests);
    char extra[256] = "", key[32];
    for (int round = 0; round < ROUNDS; ++round) {
        snprintf(key, sizeof key, "rss_idle%d_kb", round + 1);
        bench_extra(extra, sizeof extra, key, rss_after_idle[round]);
    }
    bench_report_extra("server_idle", sum, busy_ns, extra);
    return 0;
}
