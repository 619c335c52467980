// SpinLock: test-and-test-and-set, yielding after a short spin. Guards the central free lists,
// where critical sections are a few pointer swaps; it never allocates, so it is safe inside
// malloc and in fork handlers. NoLock is the single-threaded policy.
//
// The lock word holds its owner (the thread's pthread_t), not just a flag, so that a fork
// handler can tell "held by this very thread" from "held by another": a signal handler that
// forks may have interrupted this thread inside a critical section, and waiting for that lock
// would wait forever (fork_prepare in segregated.hpp skips it instead). Owner and state are
// one word, so there is no moment where the lock is taken but its owner unknown.
#pragma once

#include <atomic>
#include <cstdint>

#include <pthread.h>
#include <sched.h>

namespace chainalloc {

class SpinLock {
public:
    void lock() noexcept {
        const std::uintptr_t self = caller();
        for (;;) {
            std::uintptr_t expected = 0;
            if (word_.compare_exchange_weak(expected, self, std::memory_order_acquire, std::memory_order_relaxed))
                return;
            for (int spins = 0; word_.load(std::memory_order_relaxed) != 0; ++spins) {
                if (spins < 64)
                    __builtin_ia32_pause();
                else
                    sched_yield();
            }
        }
    }
    void unlock() noexcept { word_.store(0, std::memory_order_release); }

    /// Takes the lock only if it is free: for work that can be left to whoever holds it.
    bool try_lock() noexcept {
        std::uintptr_t expected = 0;
        return word_.load(std::memory_order_relaxed) == 0 &&
               word_.compare_exchange_strong(expected, caller(), std::memory_order_acquire, std::memory_order_relaxed);
    }

    /// True when the calling thread holds the lock (a signal handler that interrupted it).
    bool held_by_caller() const noexcept { return word_.load(std::memory_order_relaxed) == caller(); }

private:
    static std::uintptr_t caller() noexcept { return static_cast<std::uintptr_t>(pthread_self()); }

    std::atomic<std::uintptr_t> word_{0};
};

struct NoLock {
    void lock() noexcept {}
    void unlock() noexcept {}
    bool try_lock() noexcept { return true; }
    bool held_by_caller() const noexcept { return false; }
};

template <class L>
class LockGuard {
public:
    explicit LockGuard(L& l) noexcept : l_(l) { l_.lock(); }
    ~LockGuard() { l_.unlock(); }
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;

private:
    L& l_;
};

/// fork() for one lock, in the order of pthread_atfork's three handlers. prepare takes the
/// lock unless this thread already holds it (then the interrupted owner keeps it); the parent
/// releases what prepare took; the child releases it in every case: no other thread exists
/// there, and the child, if it never returns from the signal handler, never would.
template <class L>
struct ForkGuard {
    bool taken = false;

    void prepare(L& l) noexcept {
        taken = !l.held_by_caller();
        if (taken) l.lock();
    }
    void parent(L& l) noexcept {
        if (taken) l.unlock();
        taken = false;
    }
    void child(L& l) noexcept {
        l.unlock();
        taken = false;
    }
};

}  // namespace chainalloc
