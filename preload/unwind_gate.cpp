// The marks of unwind_gate.hpp: one counter per thread on a cache line of its own, the
// forker's flag, and the wait.
#include "unwind_gate.hpp"

#include <atomic>
#include <cstdint>

#include <sched.h>

namespace chainalloc::preload::unwind_gate {
namespace {

constexpr unsigned kMarks = 64;  // mark 0 is shared by the threads after the first 63

struct alignas(64) Mark {
    std::atomic<std::uint32_t> unwinding{0};  // a depth: a signal handler may unwind inside an unwind
};

Mark g_marks[kMarks];
std::atomic<unsigned> g_next_mark{1};
std::atomic<bool> g_forking{false};

thread_local unsigned t_mark = kMarks;  // kMarks: not given yet
thread_local std::uint32_t t_depth = 0;  // this thread's own share of its mark

Mark& mine() noexcept {
    if (t_mark == kMarks) {
        unsigned m = g_next_mark.fetch_add(1, std::memory_order_relaxed);
        t_mark = m < kMarks ? m : 0;
    }
    return g_marks[t_mark];
}

}  // namespace

// t_depth counts this thread's share before the mark goes up and after it comes down: a
// signal handler that forks anywhere in between never finds more of its own thread on the
// mark than t_depth, so it never waits for itself. (On the shared mark 0 it may then stop
// waiting one unwinding thread early, inside that window only; a signal handler's fork on a
// thread past the 63rd, an edge of an edge.)
bool enter() noexcept {
    Mark& m = mine();
    ++t_depth;
    m.unwinding.fetch_add(1, std::memory_order_seq_cst);
    if (g_forking.load(std::memory_order_seq_cst)) {
        m.unwinding.fetch_sub(1, std::memory_order_release);
        --t_depth;
        return false;
    }
    return true;
}

void leave() noexcept {
    g_marks[t_mark].unwinding.fetch_sub(1, std::memory_order_release);
    --t_depth;
}

void before_fork() noexcept {
    g_forking.store(true, std::memory_order_seq_cst);
    unsigned own = t_mark;
    for (unsigned i = 0; i < kMarks; ++i) {
        std::uint32_t self = i == own ? t_depth : 0;  // this thread's own unwind, if a signal interrupted it
        while (g_marks[i].unwinding.load(std::memory_order_seq_cst) > self) sched_yield();
    }
}

void after_fork(bool child) noexcept {
    if (child) {  // one thread now: no other mark can be raised
        for (unsigned i = 0; i < kMarks; ++i)
            if (i != t_mark) g_marks[i].unwinding.store(0, std::memory_order_relaxed);
        if (t_mark < kMarks) g_marks[t_mark].unwinding.store(t_depth, std::memory_order_relaxed);
    }
    g_forking.store(false, std::memory_order_release);
}

}  // namespace chainalloc::preload::unwind_gate
