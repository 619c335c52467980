// Shared by the fault tests: a watchdog that turns a hang into a failure with a message, and
// the check of a fork child's exit status. Everything here may run inside a signal handler or
// in a fork child, so it only uses async-signal-safe calls (write, alarm, _exit, waitpid).
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// Exit status of a fork child killed by its own watchdog, so the parent can say "it hung".
enum { FAULT_CHILD_HUNG = 3 };

static const char* fault_name = "fault";    // program name, first word of every message
static const char* fault_unit = "steps";    // what fault_progress counts, for the message
static int fault_fd = STDERR_FILENO;        // where messages go (cancel_log moves stderr)
static int fault_limit = 5;                 // seconds without progress that count as a hang
static volatile sig_atomic_t fault_progress;  // bumped by the test as it advances
static volatile sig_atomic_t fault_in_child;
static const char* volatile fault_where;     // what the test was doing, if it says
static sig_atomic_t fault_last, fault_idle;

static inline void fault_write(const char* s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(fault_fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static inline void fault_write_num(long v) {
    char buf[24], *p = buf + sizeof buf;
    *--p = '\0';
    int neg = v < 0;
    unsigned long u = neg ? 0ul - (unsigned long)v : (unsigned long)v;
    do *--p = (char)('0' + u % 10); while (u /= 10);
    if (neg) *--p = '-';
    fault_write(p);
}

// Ticks once a second. The parent fails after fault_limit seconds without progress; a child
// (which has no ticks: fork clears alarms) fails when its single alarm goes off.
static inline void fault_on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    if (fault_in_child) {
        fault_write(fault_name);
        fault_write(": WATCHDOG: fork child ");
        fault_write_num(getpid());
        fault_write(" hung (malloc or stdio deadlocked after fork)\n");
        _exit(FAULT_CHILD_HUNG);
    }
    if (fault_progress != fault_last) {
        fault_last = fault_progress;
        fault_idle = 0;
    } else if (++fault_idle >= fault_limit) {
        fault_write(fault_name);
        fault_write(": WATCHDOG: no progress for ");
        fault_write_num(fault_limit);
        fault_write(" s after ");
        fault_write_num(fault_progress);
        fault_write(" ");
        fault_write(fault_unit);
        fault_write(": the process hangs (deadlock)");
        if (fault_where) {
            fault_write("; it was in ");
            fault_write(fault_where);
        }
        fault_write("\n");
        _exit(1);
    }
    alarm(1);
    errno = saved;
}

// Installs handler for sig, restarting interrupted calls (the patterns' loops must not see EINTR).
static inline void fault_handle(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static inline void watchdog_start(const char* name, const char* unit, int limit_seconds) {
    fault_name = name;
    fault_unit = unit;
    fault_limit = limit_seconds;
    fault_handle(SIGALRM, fault_on_alarm);
    alarm(1);
}

// In a fork child, first thing: alarms do not survive fork, so the child arms its own.
static inline void watchdog_child(unsigned seconds) {
    fault_in_child = 1;
    alarm(seconds);
}

// Waits for a fork child and says what went wrong, if anything; returns 1 if it exited 0.
static inline int fault_reap(pid_t pid) {
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid) {
        fault_write(fault_name);
        fault_write(": FAIL: waitpid failed\n");
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
    fault_write(fault_name);
    fault_write(": FAIL: fork child ");
    fault_write_num(pid);
    if (WIFSIGNALED(status)) {
        fault_write(" killed by signal ");
        fault_write_num(WTERMSIG(status));
    } else if (WEXITSTATUS(status) == FAULT_CHILD_HUNG) {
        fault_write(" hung and was stopped by its watchdog");
    } else {
        fault_write(" exited with status ");
        fault_write_num(WEXITSTATUS(status));
    }
    fault_write("\n");
    return 0;
}

// Small deterministic generator (xorshift64*), one state per thread, so runs repeat.
static inline uint64_t fault_rng(uint64_t* s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static inline size_t fault_below(uint64_t* s, size_t n) { return (size_t)(fault_rng(s) % n); }
