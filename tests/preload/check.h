// Shared by the preload test programs: a thread-safe pass/fail tally with the output
// convention every program follows (one line per failed check, then "N passed, M failed"),
// and a position-dependent byte pattern for spotting corruption.
// Plain C that also compiles as C++ (cxx_stress.cpp includes it).
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Counters are bumped from many threads; GCC builtins work in both C and C++.
static unsigned long check_passed_count;
static unsigned long check_failed_count;

// Cap printed failures so a systematic bug (e.g. an alignment off for every size) stays
// readable; every failure is still counted.
enum { CHECK_MAX_PRINTED = 100 };

static int check_report(int ok, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Returns ok, so a check can guard what depends on it: if (CHECK(p, ...)) use(p);
static int check_report(int ok, const char* file, int line, const char* fmt, ...) {
    if (ok) {
        __atomic_fetch_add(&check_passed_count, 1, __ATOMIC_RELAXED);
        return ok;
    }
    unsigned long n = __atomic_fetch_add(&check_failed_count, 1, __ATOMIC_RELAXED);
    if (n >= CHECK_MAX_PRINTED) return ok;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    // One write per line so lines from different threads never interleave.
    flockfile(stdout);
    printf("FAIL %s:%d: %s\n", file, line, msg);
    if (n + 1 == CHECK_MAX_PRINTED) printf("FAIL (further failures counted, not printed)\n");
    fflush(stdout);
    funlockfile(stdout);
    return ok;
}

// CHECK(condition, printf-style description); evaluates to the condition's truth.
#define CHECK(cond, ...) check_report(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

// After a storm of failures the process goes on: a small block, written and read back.
static inline void check_still_running(void) {
    char* s = (char*)malloc(100);
    if (CHECK(s != NULL, "malloc(100) at the end: errno %d", errno)) {
        strcpy(s, "still running");
        CHECK(strcmp(s, "still running") == 0, "contents");
    }
    free(s);
}

// Prints the final tally; returns the process exit status.
static inline int check_finish(void) {
    unsigned long passed = __atomic_load_n(&check_passed_count, __ATOMIC_RELAXED);
    unsigned long failed = __atomic_load_n(&check_failed_count, __ATOMIC_RELAXED);
    printf("%lu passed, %lu failed\n", passed, failed);
    fflush(stdout);
    return failed == 0 ? 0 : 1;
}

// The pattern depends on the seed and on the position, so a block copied to the wrong offset,
// a stale block handed out twice, or a neighbour's overrun all show up.
static inline uint64_t pattern_word(uint64_t seed, size_t i) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
}

static inline uint8_t pattern_byte(uint64_t seed, size_t i) {
    return (uint8_t)(pattern_word(seed, i / 8) >> (8 * (i % 8)));
}

static inline void pattern_fill(void* p, size_t n, uint64_t seed) {
    unsigned char* b = (unsigned char*)p;
    size_t words = n / 8;
    for (size_t w = 0; w < words; ++w) {
        uint64_t v = pattern_word(seed, w);
        memcpy(b + 8 * w, &v, 8);
    }
    for (size_t i = 8 * words; i < n; ++i) b[i] = pattern_byte(seed, i);
}

// Index of the first byte in [0, n) that differs from the pattern, or n if none does.
static inline size_t pattern_mismatch(const void* p, size_t n, uint64_t seed) {
    const unsigned char* b = (const unsigned char*)p;
    size_t words = n / 8;
    for (size_t w = 0; w < words; ++w) {
        uint64_t v = pattern_word(seed, w), got;
        memcpy(&got, b + 8 * w, 8);
        if (got != v) {
            for (size_t i = 8 * w;; ++i)
                if (b[i] != pattern_byte(seed, i)) return i;
        }
    }
    for (size_t i = 8 * words; i < n; ++i)
        if (b[i] != pattern_byte(seed, i)) return i;
    return n;
}

static inline int pattern_ok(const void* p, size_t n, uint64_t seed) {
    return pattern_mismatch(p, n, seed) == n;
}

// Small deterministic generator (xorshift64*), one state per thread, so runs are repeatable.
static inline uint64_t rng_next(uint64_t* s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline size_t rng_below(uint64_t* s, size_t n) { return (size_t)(rng_next(s) % n); }
