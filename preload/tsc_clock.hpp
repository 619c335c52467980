// CLOCK_MONOTONIC read from the CPU's time-stamp counter: the event log's clock. clock_gettime
// through the vDSO was ~11% of a logged run; here an event's time is one rdtscp, a multiply
// and a shift, against a conversion measured once at start-up. Used only when the TSC is
// trustworthy (invariant, and the kernel's own clocksource); otherwise every read is
// clock_gettime, as before.
//
// Invariants (the log reader depends on them):
// - One conversion per process: measured once, before any event, and copied by value into
//   every LogClock (the preload's and the plugin's); it never changes. So all threads put one
//   time on one moment, and the reader's merge of threads by time keeps a free of p in one
//   thread before the malloc that gets p in another (and a malloc before another thread's
//   free of what it returned).
// - That order also needs each read to come after the loads before it: the malloc's after the
//   load that found p on a free list, the free's after the load of p from the program's data.
//   A plain rdtsc may run ahead of a pending load (out of order, by up to a cache or TLB miss:
//   hundreds of ns), so the read is rdtscp, as the kernel's own (it waits for earlier loads).
//   The other side needs nothing: a time is read before the stores after it, which become
//   visible only once the read has retired. (A plain rdtsc was measured 5-7% cheaper per
//   logged run than rdtscp; that is the price of the order.)
// - Times never go backwards within a thread: rdtscp reads in program order, and the kernel
//   uses the TSC as its clocksource only when the CPUs' counters agree (a thread that moves
//   to another CPU reads on). The compact sink also clamps a thread's times to its last.
// - A forked child keeps the parent's conversion (plain memory, inherited); only its log's
//   start moves to the fork (LogClock::restart). The footer's time is read the same way as the
//   events', so they stay on one scale.
// No allocation, lock or system call on the read; calibrate() reads one sysfs file with raw
// open/read (it runs in the malloc replacement's start-up) and spins ~200 us.
#pragma once

#include <cstdint>
#include <cstring>
#include <ctime>

#if defined(__x86_64__)
#include <cpuid.h>
#include <fcntl.h>
#include <unistd.h>
#include <x86intrin.h>
#endif

namespace chainalloc::preload {

/// A clock_gettime clock in nanoseconds.
inline std::int64_t clock_ns(clockid_t id) noexcept {
    timespec ts;
    clock_gettime(id, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

class TscClock {
public:
    /// Nanoseconds on CLOCK_MONOTONIC's scale (the TSC's, converted, when it is in use).
    std::int64_t now() const noexcept {
#if defined(__x86_64__)
        if (mult_) {
            auto ticks = static_cast<std::int64_t>(read() - tsc0_);  // < 0 only on a skewed CPU: clamped by the caller
            return ns0_ + static_cast<std::int64_t>((static_cast<__int128>(ticks) * mult_) >> kShift);
        }
#endif
        return clock_ns(CLOCK_MONOTONIC);
    }

    /// Measures the TSC against CLOCK_MONOTONIC, or returns the clock_gettime fallback.
    static TscClock calibrate() noexcept {
        TscClock c;
#if defined(__x86_64__)
        if (!trustworthy()) return c;
        Pair a = pair();
        Pair b;
        do b = pair();
        while (b.ns - a.ns < kSpinNs);
        if (b.tsc <= a.tsc) return c;
        // ns per tick << kShift; a TSC outside 100 MHz .. 20 GHz is not one we understand.
        auto mult = static_cast<std::uint64_t>((static_cast<unsigned __int128>(b.ns - a.ns) << kShift) / (b.tsc - a.tsc));
        if (mult < (std::uint64_t{1} << kShift) / 20 || mult > (std::uint64_t{10} << kShift)) return c;
        c.tsc0_ = a.tsc;
        c.ns0_ = a.ns;
        c.mult_ = mult;
#endif
        return c;
    }

private:
    static constexpr unsigned kShift = 32;  // mult_'s precision: 2^-32 ns per tick
    static constexpr std::int64_t kSpinNs = 200000;  // calibration: within ~5 ppm of CLOCK_MONOTONIC (measured)

    std::uint64_t tsc0_ = 0;  // a TSC reading ...
    std::int64_t ns0_ = 0;    // ... and CLOCK_MONOTONIC at that moment
    std::uint64_t mult_ = 0;  // ns per tick << kShift; 0: the TSC is not used

#if defined(__x86_64__)
    // rdtscp, not rdtsc: it waits for every earlier instruction to execute and every earlier
    // load to complete (Intel; AMD: to retire) before reading; see the invariants above.
    static std::uint64_t read() noexcept {
        unsigned cpu;
        return __rdtscp(&cpu);
    }

    // Invariant TSC (CPUID 0x80000007 EDX bit 8: constant rate, running in every C-state) and
    // the kernel's own clock reads it: the kernel checked that the CPUs' counters agree, and
    // switches away from it (to hpet, say) when they do not.
    static bool trustworthy() noexcept {
        unsigned a, b, c, d;
        if (!__get_cpuid(0x80000001, &a, &b, &c, &d) || !(d & (1u << 27))) return false;  // rdtscp
        if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8))) return false;
        // Start-up, one thread: open and read cannot be cancelled yet.
        int fd = ::open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        char name[16];
        ssize_t n = ::read(fd, name, sizeof name);
        ::close(fd);
        return n == 4 && std::memcmp(name, "tsc\n", 4) == 0;
    }

    struct Pair {
        std::uint64_t tsc;
        std::int64_t ns;
    };
    // CLOCK_MONOTONIC and the TSC at one moment: the middle of the tightest of a few brackets
    // of two TSC reads around a clock_gettime (an interrupt widens one, not all).
    static Pair pair() noexcept {
        Pair best{0, 0};
        std::uint64_t width = ~std::uint64_t{0};
        for (int i = 0; i < 8; ++i) {
            std::uint64_t t1 = read();
            std::int64_t ns = clock_ns(CLOCK_MONOTONIC);
            std::uint64_t t2 = read();
            if (t2 - t1 < width) {
                width = t2 - t1;
                best = {t1 + width / 2, ns};
            }
        }
        return best;
    }
#endif
};

}  // namespace chainalloc::preload
