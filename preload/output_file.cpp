// Output files of the preload: where a pattern leads, and how the file is created.
#include "output_file.hpp"

#include "write_all.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace chainalloc::preload {
namespace {

// "%p" -> pid, "%e" -> program name (bytes other than printable ones, '%' and '/' become '_',
// so a name with a space or a newline makes one file name), "%%" -> "%". False if the
// result does not fit.
bool expand_path(const char* pattern, char* out, std::size_t cap) noexcept {
    std::size_t n = 0;
    auto put = [&](char c) {
        if (n + 1 >= cap) return false;
        out[n++] = c;
        return true;
    };
    for (const char* p = pattern; *p; ++p) {
        bool ok = true;
        if (p[0] == '%' && p[1] == 'p') {
            char pid[24];
            std::snprintf(pid, sizeof pid, "%d", static_cast<int>(getpid()));
            for (const char* d = pid; *d && ok; ++d) ok = put(*d);
            ++p;
        } else if (p[0] == '%' && p[1] == 'e') {
            for (const char* e = program_invocation_short_name; *e && ok; ++e)
                ok = put(plain(static_cast<unsigned char>(*e)) ? *e : '_');
            ++p;
        } else if (p[0] == '%' && p[1] == '%') {
            ok = put('%');
            ++p;
        } else {
            ok = put(*p);
        }
        if (!ok) return false;
    }
    out[n] = 0;
    return true;
}

// A FIFO (or device) that exists is written as it is: there is no file to truncate or to
// mistake for ours. Opened non-blocking, so a FIFO nobody reads fails at once (ENXIO) instead
// of blocking the program in its first malloc; then blocking again, so no line is dropped.
int open_existing_device(const char* path) noexcept {
    int fd = ::open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

}  // namespace

// Creates the file, mode 0600 unless the caller says otherwise (allocation logs show a
// program's behaviour; the umask still applies), never opening one that exists (O_EXCL: no
// truncation, no appending to someone else's file) nor following a symlink. A taken name gets
// ".1" to ".15", then ".PID", ".PID.1", ...: tidy names for a few processes, and no limit (nor
// a quadratic number of tries) for a run of thousands.
int open_output(const char* pattern, unsigned mode, char* path, std::size_t cap, const char*& why) noexcept {
    if (!std::strcmp(pattern, "-") || !std::strcmp(pattern, "stderr")) {
        std::snprintf(path, cap, "stderr");
        return STDERR_FILENO;
    }
    char base[kPathCap - 32];
    if (!expand_path(pattern, base, sizeof base)) {
        std::snprintf(path, cap, "%s", pattern);
        why = "too long once %e and %p are expanded";
        return -1;
    }
    NoCancel no_cancel;  // open() is a cancellation point
    int pid = static_cast<int>(getpid());
    for (long attempt = 0;; ++attempt) {
        if (attempt == 0)
            std::snprintf(path, cap, "%s", base);
        else if (attempt < 16)
            std::snprintf(path, cap, "%s.%ld", base, attempt);
        else if (attempt == 16)
            std::snprintf(path, cap, "%s.%d", base, pid);
        else
            std::snprintf(path, cap, "%s.%d.%ld", base, pid, attempt - 16);
        // O_RDWR, not O_WRONLY: a shared writable mapping of the file needs read access too.
        int fd = ::open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode ? mode : 0600);
        if (fd >= 0 || errno != EEXIST) return fd;
        struct stat st;
        if (attempt == 0 && lstat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
            fd = open_existing_device(path);
            if (fd < 0 && errno == ENXIO) why = "a FIFO that no process reads";
            return fd;
        }
        if (attempt > 100000) return -1;  // errno is EEXIST: every name is taken
    }
}

}  // namespace chainalloc::preload
