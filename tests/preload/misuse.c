// Misuse of the free-list layer's blocks: double free, interior free, writes into a freed
// block. The layer must notice and abort with one line naming the misuse and the class, never
// hand out a block that is still in use or memory that is not its own (misuse.sh checks the
// line and the signal). Each mode prints the addresses involved on stdout first, so the script
// can compare them with the message.
//
// Usage: misuse MODE, MODE one of clean, double_free, double_free_later, interior_free,
// overwrite_freed, overflow_byte, attacker_global.
// Exit status: 0 when the program ran to the end, 3 when the allocator returned a block it
// must not have (a live one, or the global), 2 on a usage error; an abort is the layer's.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Hides a pointer's origin from the compiler, which may otherwise warn about (or reason from)
// the use after free these modes commit on purpose.
static void* launder(void* p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

static void say(const char* what, const void* p) {
    printf("%s %p\n", what, p);
    fflush(stdout);  // before any abort: stdout is a pipe
}

static int overlaps(const void* a, size_t an, const void* b, size_t bn) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y + bn && y < x + an;
}

// n malloc(size) calls, kept live; returns 3 if one overlaps any of the `live` blocks (each of
// `size` bytes) or an earlier one of these, else 0.
static int take_and_check(size_t n, size_t size, void** live, size_t live_count) {
    void** got = calloc(n, sizeof *got);
    if (!got) return 2;
    for (size_t i = 0; i < n; ++i) {
        got[i] = malloc(size);
        if (!got[i]) continue;
        memset(got[i], 0x5a, size);  // a real program would write it
        for (size_t j = 0; j < live_count; ++j)
            if (live[j] && overlaps(got[i], size, live[j], size)) {
                printf("RETURNED LIVE BLOCK %p (malloc %zu) overlaps %p\n", got[i], i, live[j]);
                return 3;
            }
        for (size_t j = 0; j < i; ++j)
            if (got[j] && overlaps(got[i], size, got[j], size)) {
                printf("RETURNED LIVE BLOCK %p twice (mallocs %zu and %zu)\n", got[i], j, i);
                return 3;
            }
    }
    return 0;
}

// The same allocations as the misuse modes, used correctly: the checks must not fire on them.
static int clean(void) {
    void* p = malloc(64);
    free(p);
    void* q[600];
    for (int i = 0; i < 600; ++i) q[i] = malloc(64);
    for (int i = 0; i < 600; ++i) free(q[i]);
    void* blocks[64];
    for (int i = 0; i < 64; ++i) blocks[i] = malloc(32);
    free(blocks[10]);
    blocks[10] = NULL;
    int rc = take_and_check(1000, 32, blocks, 64);
    for (int i = 0; i < 64; ++i) free(blocks[i]);
    return rc;
}

static int double_free(void) {
    void* p = malloc(64);
    say("block", p);
    free(p);
    free(launder(p));
    // Survived: show the harm, the same block handed out twice.
    void* a = malloc(64);
    void* b = malloc(64);
    printf("second free returned; then malloc gave %p and %p\n", a, b);
    return a == b ? 3 : 0;
}

// The second free comes long after the first: other blocks were freed in between, so p is not
// the last block freed, and 600 blocks of its own class were freed after it (more than a
// thread's cache holds: p may have moved to the shared lists).
static int double_free_later(void) {
    static const size_t sizes[] = {16, 24, 32, 40, 48, 80, 100, 128, 200, 1000, 4000, 30000};
    enum { kOthers = 1000, kSameClass = 600 };
    static void* same[kSameClass];
    static void* others[kOthers];
    for (int i = 0; i < kSameClass; ++i) same[i] = malloc(64);
    void* p = malloc(64);
    say("block", p);
    free(p);
    for (int i = 0; i < kSameClass; ++i) free(same[i]);
    for (int i = 0; i < kOthers; ++i) others[i] = malloc(sizes[i % (sizeof sizes / sizeof sizes[0])]);
    for (int i = 0; i < kOthers; ++i) free(others[i]);
    free(launder(p));
    printf("second free returned\n");
    return 0;
}

static int interior_free(void) {
    char* p = malloc(64);
    say("block", p);
    say("freed", p + 16);
    free(launder(p + 16));
    printf("interior free returned\n");
    return 0;
}

// A use after free writes a plausible heap address (a live block's) into a freed block's
// first word: the layer must not follow it and hand out the live block.
static int overwrite_freed(void) {
    void* a = malloc(32);
    void* b = malloc(32);
    void* live = malloc(32);
    say("block", a);
    say("live", live);
    free(b);
    free(a);
    memcpy(launder(a), &live, sizeof live);
    return take_and_check(10, 32, &live, 1);
}

// A 1-byte overflow off the end of the live block below lands on the lowest byte of the
// freed block's first word (a C string's terminator: 0, or 0x20 if that byte is 0 already).
// Written directly: the layout may not put a live neighbour right below.
static int overflow_byte(void) {
    enum { kBlocks = 64, kFreed = 40 };
    void* blocks[kBlocks];
    for (int i = 0; i < kBlocks; ++i) blocks[i] = malloc(32);
    void* p = blocks[kFreed];
    say("block", p);
    free(p);
    blocks[kFreed] = NULL;
    unsigned char* low = launder(p);
    *low = *low != 0 ? 0 : 0x20;
    return take_and_check(1000, 32, blocks, kBlocks);
}

// An attacker points a freed block's link at a global: malloc must never return it.
static char target[64] __attribute__((aligned(16)));

static int attacker_global(void) {
    void* p = malloc(32);
    say("block", p);
    say("target", target);
    free(p);
    void* t = target;
    memcpy(launder(p), &t, sizeof t);
    for (int i = 0; i < 1000; ++i) {
        char* q = malloc(32);
        if (q && q + 32 > target && q < target + sizeof target) {
            printf("RETURNED GLOBAL %p (malloc %d)\n", (void*)q, i);
            return 3;
        }
    }
    printf("1000 mallocs, none returned the global\n");
    return 0;
}

// A use after free past the list words (byte 40 of a freed 64-byte block): only check=full's
// poison sees it, when the block is handed out again.
static int write_after_free(void) {
    char* p = malloc(64);
    say("block", p);
    free(p);
    ((char*)launder(p))[40] = 1;
    for (int i = 0; i < 100; ++i) free(malloc(64));
    printf("the write went unseen\n");
    return 0;
}

// A free of a block that is no longer with the program, after the use after free wiped its
// free mark (word 1): only check=full's live bit sees the double free then.
static int double_free_wiped(void) {
    char* p = malloc(64);
    say("block", p);
    free(p);
    memset((char*)launder(p) + 8, 0, 8);
    free(launder(p));
    printf("second free returned\n");
    return 0;
}

// Not misuse: a live block whose word 1 holds a freed block's mark (copied by a use after
// free read, or by chance) is freed like any other; only a block that is on a free list is a
// double free.
static int mark_lookalike(void) {
    unsigned long* freed = malloc(64);
    unsigned long* live[8];
    for (int i = 0; i < 8; ++i) live[i] = malloc(64);
    free(freed);
    unsigned long mark = ((volatile unsigned long*)launder(freed))[1];
    for (int i = 0; i < 8; ++i) live[i][1] = mark;
    for (int i = 0; i < 8; ++i) free(live[i]);
    printf("8 lookalikes freed\n");
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const char* mode = argv[1];
    if (!strcmp(mode, "clean")) return clean();
    if (!strcmp(mode, "double_free")) return double_free();
    if (!strcmp(mode, "double_free_later")) return double_free_later();
    if (!strcmp(mode, "interior_free")) return interior_free();
    if (!strcmp(mode, "overwrite_freed")) return overwrite_freed();
    if (!strcmp(mode, "overflow_byte")) return overflow_byte();
    if (!strcmp(mode, "attacker_global")) return attacker_global();
    if (!strcmp(mode, "write_after_free")) return write_after_free();
    if (!strcmp(mode, "mark_lookalike")) return mark_lookalike();
    if (!strcmp(mode, "double_free_wiped")) return double_free_wiped();
    return 2;
}
