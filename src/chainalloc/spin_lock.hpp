// SpinLock: test-and-test-and-set, yielding after a short spin. Guards the central free lists,
// where critical sections are a few pointer swaps; it never allocates, so it is safe inside
// malloc and in fork handlers. NoLock is the single-threaded policy.
#pragma once

#include <atomic>

#include <sched.h>

namespace chainalloc {

class SpinLock {
public:
    void lock() noexcept {
        for (;;) {
            if (!locked_.exchange(true, std::memory_order_acquire)) return;
            for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
                if (spins < 64)
                    __builtin_ia32_pause();
                else
                    sched_yield();
            }
        }
    }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> locked_{false};
};

struct NoLock {
    void lock() noexcept {}
    void unlock() noexcept {}
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

}  // namespace chainalloc
