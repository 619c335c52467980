#include "event_log.hpp"

#include "chainalloc/spin_lock.hpp"
#include "config/parse.hpp"
#include "runtime.hpp"

#include <spdlog/details/null_mutex.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace chainalloc::preload::event_log {
namespace {

void write_all(int fd, const char* p, std::size_t n) noexcept {
    while (n) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// spdlog's file sinks open by name (fopen) and cannot promise O_EXCL|O_NOFOLLOW|O_CLOEXEC, and
// they buffer in the process, where an exec() or a crash loses the tail. This sink takes a
// descriptor we opened ourselves and, for a regular file, writes each line straight into a
// MAP_SHARED window of the file: the bytes are in the page cache the moment they are copied,
// so they survive exec, abort and SIGKILL alike. The file grows a window at a time and is cut
// to its exact length at exit; a process that never got there leaves NUL bytes after its last
// line, which the reader ignores. Anything that cannot be mapped (stderr, a pipe, /dev/null)
// gets an ordinary 64 KiB buffer and write(). spdlog's pattern formatter ("%v") still makes
// each line; lines stay far below its 250-byte inline buffer, so an event allocates nothing.
class FileSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
    explicit FileSink(int fd) : fd_(fd) {
        struct stat st;
        mapped_ = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    }

    /// Normal exit: the file gets its exact length.
    void close_file() {
        flush_();
        if (mapped_ && window_) {
            munmap(window_, kWindow);
            window_ = nullptr;
            if (ftruncate(fd_, static_cast<off_t>(written_)) != 0) {
                // The NUL tail stays; the reader ignores it.
            }
            // Late lines (after the footer) are appended with write(), after the last byte.
            lseek(fd_, static_cast<off_t>(written_), SEEK_SET);
            mapped_ = false;
        }
        through_ = true;
    }

    /// In a fork child: let go of the parent's file without writing a byte to it.
    void abandon() {
        if (window_) munmap(window_, kWindow);
        window_ = nullptr;
        used_ = 0;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        if (mapped_ && !through_ && put_mapped(line.data(), line.size())) return;
        put_buffered(line.data(), line.size());
    }
    void flush_() override {
        write_all(fd_, buffer_, used_);
        used_ = 0;
    }

private:
    static constexpr std::size_t kWindow = 1 << 20;

    bool put_mapped(const char* p, std::size_t n) {
        while (n) {
            if (!window_ || window_used_ == kWindow) {
                if (!next_window()) return false;
            }
            std::size_t take = std::min(n, kWindow - window_used_);
            std::memcpy(window_ + window_used_, p, take);
            window_used_ += take;
            written_ += take;
            p += take;
            n -= take;
        }
        return true;
    }

    // Grows the file by a window and maps it; on failure the sink falls back to write().
    bool next_window() {
        if (window_) munmap(window_, kWindow);
        window_ = nullptr;
        off_t offset = static_cast<off_t>(written_);
        if (ftruncate(fd_, offset + static_cast<off_t>(kWindow)) != 0) return give_up();
        void* w = mmap(nullptr, kWindow, PROT_WRITE, MAP_SHARED, fd_, offset);
        if (w == MAP_FAILED) return give_up();
        window_ = static_cast<char*>(w);
        window_used_ = 0;
        return true;
    }

    bool give_up() {
        mapped_ = false;
        if (ftruncate(fd_, static_cast<off_t>(written_)) != 0) {
        }
        lseek(fd_, static_cast<off_t>(written_), SEEK_SET);
        return false;
    }

    void put_buffered(const char* p, std::size_t n) {
        if (used_ + n > sizeof buffer_) flush_();
        if (n > sizeof buffer_) {
            write_all(fd_, p, n);
        } else {
            std::memcpy(buffer_ + used_, p, n);
            used_ += n;
        }
        if (through_) flush_();
    }

    int fd_;
    bool mapped_ = false;
    bool through_ = false;  // after the footer: every line goes out at once
    char* window_ = nullptr;
    std::size_t window_used_ = 0;
    std::size_t written_ = 0;  // bytes of the file that hold lines (mapped mode)
    std::size_t used_ = 0;
    char buffer_[64 * 1024];
};

struct Log {
    config::ProxySpec spec;
    bool attached = false;
    bool failed = false;   // could not open: events are counted, not written
    spdlog::logger* logger = nullptr;  // never deleted: in use until the process is gone
    FileSink* sink = nullptr;
    int fd = -1;
};

Log g_logs[config::kMaxLayers];
std::int64_t g_start_unix_ns = 0;  // the moment the log's t_ns count from
SpinLock g_lock;  // one for all logs: a realloc's line and a free's line keep their order

// "%p" -> pid, "%e" -> program name, "%%" -> "%".
bool expand_path(const char* pattern, char* out, std::size_t cap) noexcept {
    std::size_t n = 0;
    auto put = [&](const char* s) {
        for (; *s; ++s) {
            if (n + 1 >= cap) return false;
            out[n++] = *s;
        }
        return true;
    };
    for (const char* p = pattern; *p; ++p) {
        char one[2] = {*p, 0};
        char pid[24];
        bool ok;
        if (p[0] == '%' && p[1] == 'p') {
            std::snprintf(pid, sizeof pid, "%d", static_cast<int>(getpid()));
            ok = put(pid);
            ++p;
        } else if (p[0] == '%' && p[1] == 'e') {
            ok = put(program_invocation_short_name);
            ++p;
        } else if (p[0] == '%' && p[1] == '%') {
            ok = put("%");
            ++p;
        } else {
            ok = put(one);
        }
        if (!ok) return false;
    }
    out[n] = 0;
    return true;
}

// Creates the file, never opening one that exists (O_EXCL: no truncation, no appending to
// someone else's file) nor following a symlink; a taken name gets a ".1", ".2", ... suffix.
int open_log(const char* spec_path, char* path, std::size_t cap) noexcept {
    const char* pattern = spec_path[0] ? spec_path : "chainalloc.%e.%p.log";
    if (!std::strcmp(pattern, "-") || !std::strcmp(pattern, "stderr")) {
        std::snprintf(path, cap, "stderr");
        return STDERR_FILENO;
    }
    char base[config::kMaxPath + 64];
    if (!expand_path(pattern, base, sizeof base)) return -1;
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (attempt == 0)
            std::snprintf(path, cap, "%s", base);
        else
            std::snprintf(path, cap, "%s.%d", base, attempt);
        // O_RDWR, not O_WRONLY: a shared writable mapping of the file needs read access too.
        int fd = ::open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0 || errno != EEXIST) return fd;
        // An existing device or FIFO (/dev/null, a named pipe) is written as it is: there is
        // no file to truncate or to mistake for ours.
        struct stat st;
        if (attempt == 0 && lstat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
            return ::open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    return -1;
}

void write_header(Log& log) noexcept {
    char chain[config::kMaxChainText];
    config::format_chain(g_rt.spec, chain, sizeof chain);
    char layers[128] = "";
    for (unsigned i = 0; i < g_rt.count; ++i) {
        std::size_t used = std::strlen(layers);
        std::snprintf(layers + used, sizeof layers - used, "%s%s", i ? "," : "", config::layer_name(g_rt.layers[i].kind));
    }
    char header[config::kMaxChainText + 512];
    int n = std::snprintf(header, sizeof header,
                          "# chainalloc-log 1 pid=%d ppid=%d program=%s page=%ld start_unix_ns=%lld sample=%u "
                          "events=%s layers=%s chain=%s",
                          static_cast<int>(getpid()), static_cast<int>(getppid()), program_invocation_short_name,
                          sysconf(_SC_PAGESIZE),
                          static_cast<long long>(g_start_unix_ns),
                          log.spec.sample ? log.spec.sample : 1,
                          log.spec.events == config::Events::summary ? "summary" : "all", layers, chain);
    log.logger->log(spdlog::level::info, spdlog::string_view_t(header, static_cast<std::size_t>(n)));
}

// First line of the process: create the file and the spdlog logger (allocations here are the
// logger's own, served unlogged; the objects live as long as the process).
bool ensure_open(Log& log) noexcept {
    if (log.logger) return true;
    if (log.failed || !log.attached) return false;
    char path[config::kMaxPath + 80];
    log.fd = open_log(log.spec.log, path, sizeof path);
    if (log.fd < 0) {
        log.failed = true;
        char line[config::kMaxPath + 160];
        int n = std::snprintf(line, sizeof line, "chainalloc: cannot create the log '%s': %s (events are counted, not logged)\n",
                              path, std::strerror(errno));
        write_all(STDERR_FILENO, line, static_cast<std::size_t>(n));
        return false;
    }
    auto sink = std::make_shared<FileSink>(log.fd);
    sink->set_pattern("%v");
    log.sink = sink.get();
    log.logger = new spdlog::logger("chainalloc", std::move(sink));
    log.logger->set_level(spdlog::level::info);
    log.logger->flush_on(spdlog::level::off);  // we flush: buffer full, fork, exit
    write_header(log);
    return true;
}

}  // namespace

void attach(unsigned layer, const config::ProxySpec& spec, std::int64_t start_unix_ns) noexcept {
    g_start_unix_ns = start_unix_ns;
    g_logs[layer].spec = spec;
    g_logs[layer].attached = true;
}

void write(unsigned layer, const char* line, std::size_t len) noexcept {
    Log& log = g_logs[layer];
    LockGuard guard(g_lock);
    if (!ensure_open(log)) return;
    // Events go to the logger's sink directly: spdlog::logger would only add its level checks
    // and a second clock read per event (the line carries its own time). Same formatter, same
    // sink; measured 10-15% of an event's cost.
    spdlog::details::log_msg msg(spdlog::log_clock::time_point{}, spdlog::source_loc{}, "chainalloc",
                                 spdlog::level::info, spdlog::string_view_t(line, len));
    log.sink->log(msg);
}

void close_all(unsigned layer, const char* footer, std::size_t len) noexcept {
    Log& log = g_logs[layer];
    LockGuard guard(g_lock);
    if (!ensure_open(log)) return;
    log.logger->log(spdlog::level::info, spdlog::string_view_t(footer, len));
    log.sink->close_file();
}

void before_fork() noexcept {
    g_lock.lock();
    for (Log& log : g_logs)
        if (log.logger) log.logger->flush();
}

void after_fork(bool child, std::int64_t start_unix_ns) noexcept {
    if (child) {
        g_start_unix_ns = start_unix_ns;
        for (Log& log : g_logs) {
            if (!log.logger) continue;
            // The parent's logger object is abandoned, not destroyed (its destructor would
            // flush into the parent's file); its descriptor is closed so no byte reaches it.
            log.sink->abandon();
            if (log.fd != STDERR_FILENO) ::close(log.fd);
            log.logger = nullptr;
            log.sink = nullptr;
            log.fd = -1;
        }
    }
    g_lock.unlock();
}

}  // namespace chainalloc::preload::event_log
