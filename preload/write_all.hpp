// Writes from inside malloc: the preload's one way to put bytes on a descriptor (the event log,
// statistics, diagnostics on stderr).
//
// write() is a cancellation point. Inside free() it must not be one: glibc's free is not, so a
// program with a pending pthread_cancel expects its thread to end at its own cancellation
// points, and a forced unwind through our noexcept frames would call std::terminate instead.
// So cancellation is off around every such call (NoCancel), and restored to what it was.
#pragma once

#include <cerrno>
#include <cstddef>

#include <pthread.h>
#include <unistd.h>

namespace chainalloc::preload {

class NoCancel {
public:
    NoCancel() noexcept { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &saved_); }
    ~NoCancel() { pthread_setcancelstate(saved_, nullptr); }
    NoCancel(const NoCancel&) = delete;
    NoCancel& operator=(const NoCancel&) = delete;

private:
    int saved_ = PTHREAD_CANCEL_ENABLE;
};

/// All n bytes, or as many as the descriptor takes before an error; retries EINTR.
inline void write_all(int fd, const char* p, std::size_t n) noexcept {
    NoCancel no_cancel;
    while (n) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

/// A diagnostic line on stderr: what snprintf(line, sizeof line, ...) returned as n, cut to
/// what the buffer holds (nothing when n < 0).
template <std::size_t N>
inline void write_formatted(const char (&line)[N], int n) noexcept {
    if (n > 0) write_all(STDERR_FILENO, line, static_cast<std::size_t>(n) < N ? static_cast<std::size_t>(n) : N - 1);
}

}  // namespace chainalloc::preload
