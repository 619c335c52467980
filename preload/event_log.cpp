// The event log plugin (libchainalloc-log.so, see log_plugin.hpp): what event_log.hpp promises,
// loaded by the preload when the chain has a proxy. Its own namespace: a build that links the
// plugin in (the fuzzer) also has the preload's forwarding functions of event_log.hpp.
#include "call_stacks.hpp"
#include "chainalloc/spin_lock.hpp"
#include "log_plugin.hpp"
#include "modules.hpp"
#include "output_file.hpp"
#include "write_all.hpp"

#include <spdlog/details/null_mutex.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include <fcntl.h>
#include <libunwind.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace chainalloc::preload::event_log_file {
namespace {

// spdlog's file sinks open by name (fopen) and cannot promise O_EXCL|O_NOFOLLOW|O_CLOEXEC, and
// they buffer in the process, where an exec() or a crash loses the tail. This sink takes a
// descriptor we opened ourselves and, for a regular file, writes each line straight into a
// MAP_SHARED window of the file: the bytes are in the page cache the moment they are copied,
// so they survive exec, abort and SIGKILL alike. The file grows a window at a time and is cut
// to its exact length at exit; a process that never got there leaves NUL bytes after its last
// line, which the reader ignores. Anything that cannot be mapped (stderr, a pipe, /dev/null)
// gets an ordinary 64 KiB buffer and write(). spdlog's pattern formatter ("%v") still makes
// each line; lines stay far below its 250-byte inline buffer, so an event allocates nothing.
//
// A window's disk blocks are reserved (posix_fallocate) before it is mapped: a store into a
// hole that the filesystem cannot fill is SIGBUS, so a full disk would kill the program. When
// the reservation fails, logging stops with one line on stderr and the program runs on.
class FileSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
    FileSink(int fd, const char* path) : fd_(fd) {
        struct stat st;
        mapped_ = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        std::snprintf(path_, sizeof path_, "%s", path);
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

    /// In a fork child: let go of the parent's file without writing a byte to it. The window
    /// stays mapped: when the fork came from a signal handler that interrupted this very sink,
    /// the interrupted copy of the line may still land there (the same bytes at the same place
    /// as in the parent); unmapped, it would fault.
    void abandon() {
        window_ = nullptr;
        used_ = 0;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        if (stopped_) return;
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        if (mapped_ && !through_ && put_mapped(line.data(), line.size())) return;
        if (!stopped_) put_buffered(line.data(), line.size());
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

    // Grows the file by a window, its blocks reserved, and maps it. A file that can't be mapped
    // (mmap refused) falls back to write(); one that can't grow stops the log.
    bool next_window() {
        if (window_) munmap(window_, kWindow);
        window_ = nullptr;
        off_t offset = static_cast<off_t>(written_);
        if (int error = posix_fallocate(fd_, offset, static_cast<off_t>(kWindow))) return stop(error);
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

    // The disk is full (or the file may grow no more): what was written stays, exactly cut.
    bool stop(int error) {
        give_up();
        stopped_ = true;
        char line[sizeof path_ + 160];
        int n = std::snprintf(line, sizeof line, "chainalloc: the log '%s' cannot grow (%s); logging stops here\n",
                              path_, std::strerror(error));
        write_formatted(line, n);
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
    char path_[config::kMaxPath + 80];
    bool stopped_ = false;  // the file could not grow: nothing more is written
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
    std::size_t modules_written = 0;  // modules::at(0 .. this) have their line in this file
};

const LogHost* g_host = nullptr;  // the preload's side, set by the entry point
Log g_logs[config::kMaxLayers];
std::int64_t g_start_unix_ns = 0;  // the moment the log's t_ns count from
// An event line with its stack id: the proxy's line (Line in proxy_events.cpp) and " <id>".
constexpr std::size_t kMaxEventLine = 192;
SpinLock g_lock;  // one for all logs: a realloc's line and a free's line keep their order
ForkGuard<SpinLock> g_fork;

// Appends n bytes of text to out, each byte that is not `plain` (output_file.hpp) nor in `keep`
// as %XX: a header is one line of space-separated fields whatever the program is called.
void put_escaped(char* out, std::size_t cap, const char* text, std::size_t len, const char* keep) noexcept {
    std::size_t n = std::strlen(out);
    for (std::size_t i = 0; i < len && n + 4 < cap; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if ((plain(c) && c != ',') || (c && std::strchr(keep, c))) {
            out[n++] = static_cast<char>(c);
        } else {
            std::snprintf(out + n, cap - n, "%%%02X", c);
            n += 3;
        }
    }
    out[n] = 0;
}

// The command line, as argv=ARG,ARG,... (each argument escaped, commas included): %e alone
// can't tell `git pack-objects` from `git repack`.
void put_argv(char* out, std::size_t cap) noexcept {
    static char args[4096];  // under g_lock, as write_header
    ssize_t len = 0;
    {
        NoCancel no_cancel;  // open() and read() are cancellation points
        int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        len = ::read(fd, args, sizeof args);
        ::close(fd);
    }
    if (len <= 0) return;
    std::strncat(out, " argv=", cap - std::strlen(out) - 1);
    for (ssize_t start = 0; start < len;) {
        std::size_t arg = strnlen(args + start, static_cast<std::size_t>(len - start));
        if (start) std::strncat(out, ",", cap - std::strlen(out) - 1);
        put_escaped(out, cap, args + start, arg, "/");
        start += static_cast<ssize_t>(arg) + 1;
    }
}

// Called with g_lock held, so its buffers can be static: a header is a few KiB, too much for
// the stack of a thread made with a small one.
void write_header(Log& log) {
    static char chain[config::kMaxChainText];
    static char header[config::kMaxChainText * 3 + 16384];
    char layers[128] = "";
    g_host->describe_chain(chain, sizeof chain, layers, sizeof layers);
    std::snprintf(header, sizeof header,
                  "# chainalloc-log 1 pid=%d ppid=%d program=", static_cast<int>(getpid()), static_cast<int>(getppid()));
    put_escaped(header, sizeof header, program_invocation_short_name, std::strlen(program_invocation_short_name), "");
    put_argv(header, sizeof header);
    std::size_t n = std::strlen(header);
    std::snprintf(header + n, sizeof header - n, " page=%ld start_unix_ns=%lld sample=%u%s events=%s stacks=%u layers=%s chain=",
                  sysconf(_SC_PAGESIZE), static_cast<long long>(g_start_unix_ns), log.spec.sample ? log.spec.sample : 1,
                  log.spec.sample > 1 ? " sampling=bytes" : "",  // tells it from v1's address hash
                  log.spec.events == config::Events::summary ? "summary" : "all", log.spec.stacks, layers);
    put_escaped(header, sizeof header, chain, std::strlen(chain), "/, ");
    log.logger->log(spdlog::level::info, spdlog::string_view_t(header, std::strlen(header)));
}

void report_open_failure(const char* path, const char* why) noexcept {
    char line[kPathCap + 200];
    int n = std::snprintf(line, sizeof line, "chainalloc: cannot create the log '%s': %s (events are counted, not logged)\n",
                          path, why);
    write_formatted(line, n);
}

// First line of the process: create the file and the spdlog logger (allocations here are the
// logger's own, served by glibc; the objects live as long as the process). Anything spdlog
// throws (bad_alloc) ends the log, never the program.
bool ensure_open(Log& log) noexcept {
    if (log.logger) return true;
    if (log.failed || !log.attached) return false;
    char path[kPathCap];
    const char* why = nullptr;
    const char* pattern = log.spec.log[0] ? log.spec.log : "chainalloc.%e.%p.log";
    log.fd = g_host->open_output(pattern, log.spec.mode, path, sizeof path, why);
    if (log.fd < 0) {
        log.failed = true;
        report_open_failure(path, why ? why : std::strerror(errno));
        return false;
    }
    try {
        auto sink = std::make_shared<FileSink>(log.fd, path);
        sink->set_pattern("%v");
        log.logger = new spdlog::logger("chainalloc", sink);
        log.sink = sink.get();
        log.logger->set_level(spdlog::level::info);
        log.logger->flush_on(spdlog::level::off);  // we flush: buffer full, fork, exit
        write_header(log);
        return true;
    } catch (...) {
        log.failed = true;
        log.logger = nullptr;
        log.sink = nullptr;
        if (log.fd != STDERR_FILENO) {
            NoCancel no_cancel;
            ::close(log.fd);
        }
        log.fd = -1;
        report_open_failure(path, "out of memory for the logger");
        return false;
    }
}

// Events go to the logger's sink directly: spdlog::logger would only add its level checks and
// a second clock read per event (the line carries its own time). Same formatter, same sink;
// measured 10-15% of an event's cost. Called under g_lock.
void put(Log& log, const char* line, std::size_t len) noexcept {
    try {
        spdlog::details::log_msg msg(spdlog::log_clock::time_point{}, spdlog::source_loc{}, "chainalloc",
                                     spdlog::level::info, spdlog::string_view_t(line, len));
        log.sink->log(msg);
    } catch (...) {
        // Out of memory in the formatter: this line is lost, the program goes on.
    }
}

// Hex without 0x, as event lines write pointers.
std::size_t put_hex(char* out, std::uintptr_t v) noexcept {
    char digits[16];
    std::size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    for (std::size_t i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    return n;
}

// `#M base lo hi build-id path` for the modules this file has not listed yet. Under g_lock:
// the table is read, never scanned, here.
void write_modules(Log& log) noexcept {
    static char text[modules::kMaxModulePath * 3 + 2 * modules::kMaxBuildId + 96];  // under g_lock
    for (std::size_t n = modules::count(); log.modules_written < n; ++log.modules_written) {
        const modules::Module& m = modules::at(log.modules_written);
        std::size_t len = 0;
        text[len++] = '#';
        text[len++] = 'M';
        for (std::uintptr_t v : {m.base, m.lo, m.hi}) {
            text[len++] = ' ';
            len += put_hex(text + len, v);
        }
        text[len++] = ' ';
        if (!m.build_id_len) text[len++] = '-';
        for (std::uint32_t i = 0; i < m.build_id_len; ++i) {
            text[len++] = "0123456789abcdef"[m.build_id[i] >> 4];
            text[len++] = "0123456789abcdef"[m.build_id[i] & 15];
        }
        text[len++] = ' ';
        text[len] = '\0';
        put_escaped(text, sizeof text, m.path, std::strlen(m.path), "/");
        put(log, text, std::strlen(text));
    }
}

// `#S id frame...` the first time this file meets the stack, after any module it may lie in.
void write_stack(Log& log, unsigned layer, call_stacks::Stack& stack) noexcept {
    if (log.modules_written != modules::count()) write_modules(log);
    if (call_stacks::written(stack, layer)) return;
    static char text[32 + config::kMaxStackDepth * 17];  // under g_lock
    std::size_t len = static_cast<std::size_t>(std::snprintf(text, 32, "#S %u", call_stacks::id(stack)));
    const std::uintptr_t* f = call_stacks::frames(stack);
    for (std::uint32_t i = 0; i < call_stacks::depth(stack); ++i) {
        text[len++] = ' ';
        len += put_hex(text + len, f[i]);
    }
    put(log, text, len);
    call_stacks::mark_written(stack, layer);
}

}  // namespace

void attach(unsigned layer, const config::ProxySpec& spec, std::int64_t start_unix_ns) noexcept {
    g_start_unix_ns = start_unix_ns;
    g_logs[layer].spec = spec;
    g_logs[layer].attached = true;
    if (spec.events == config::Events::summary) g_logs[layer].spec.stacks = 0;  // no event, no stack
    // Initialisation is single-threaded: the table and the first look at the modules now, while
    // no other thread can be logging. Frames in this plugin, the preload and libunwind are
    // chainalloc's own, dropped from the stacks.
    if (g_logs[layer].spec.stacks) {
        if (!call_stacks::init()) {
            g_logs[layer].spec.stacks = 0;
            return;
        }
        const void* ours[] = {reinterpret_cast<const void*>(&attach), reinterpret_cast<const void*>(g_host->in_logger),
                              reinterpret_cast<const void*>(&unw_backtrace)};
        modules::init(ours, sizeof ours / sizeof ours[0]);
    }
}

void write(unsigned layer, const char* line, std::size_t len, bool allocation) noexcept {
    Log& log = g_logs[layer];
    // The stack is taken before the lock: unwinding may enter the loader (dl_iterate_phdr),
    // and so may a rescan of the modules; neither may happen under g_lock (modules.hpp).
    call_stacks::Captured stack{nullptr, false};
    if (allocation && log.spec.stacks && !log.failed) {
        // libunwind checks a frame pointer it cannot vouch for with read() on a pipe of its
        // own, a cancellation point: a cancel there would unwind through this noexcept code.
        NoCancel no_cancel;
        stack = call_stacks::capture(log.spec.stacks);
        if (stack.fresh)
            modules::note_stack(call_stacks::frames(*stack.stack), call_stacks::depth(*stack.stack));
        else
            modules::rescan_if_wanted();
    }
    LockGuard guard(g_lock);
    if (!ensure_open(log)) return;
    char with_id[kMaxEventLine];
    if (stack.stack && len + 12 <= sizeof with_id) {
        write_stack(log, layer, *stack.stack);
        std::memcpy(with_id, line, len);
        len += static_cast<std::size_t>(std::snprintf(with_id + len, 12, " %u", call_stacks::id(*stack.stack)));
        line = with_id;
    }
    put(log, line, len);
}

void close_all(unsigned layer, const char* footer, std::size_t len) noexcept {
    Log& log = g_logs[layer];
    if (log.spec.stacks) modules::rescan();  // a module loaded since the last new stack; not under g_lock
    LockGuard guard(g_lock);
    if (!ensure_open(log)) return;
    if (log.spec.stacks && log.modules_written != modules::count()) write_modules(log);
    // The footer gains stacks_dropped=N when the stack table overflowed (LOG-FORMAT.md).
    char with_drops[1024];
    if (std::uint64_t drops = log.spec.stacks ? call_stacks::dropped() : 0; drops && len < sizeof with_drops - 64) {
        std::size_t body = len && footer[len - 1] == '\n' ? len - 1 : len;
        int n = std::snprintf(with_drops, sizeof with_drops, "%.*s stacks_dropped=%llu%s", static_cast<int>(body),
                              footer, static_cast<unsigned long long>(drops), body < len ? "\n" : "");
        if (n > 0 && static_cast<std::size_t>(n) < sizeof with_drops) {
            footer = with_drops;
            len = static_cast<std::size_t>(n);
        }
    }
    try {
        log.logger->log(spdlog::level::info, spdlog::string_view_t(footer, len));
        log.sink->close_file();
    } catch (...) {
    }
}

// Called only in a process with threads (fork.cpp). A lock this thread holds itself (a signal
// handler forking from inside a log write) is not waited for, and its half-written sink is
// not flushed.
void before_fork() noexcept {
    g_fork.prepare(g_lock);
    if (!g_fork.taken) return;
    for (Log& log : g_logs) {
        if (!log.logger) continue;
        try {
            log.logger->flush();
        } catch (...) {
        }
    }
}

void after_fork(bool child, std::int64_t start_unix_ns) noexcept {
    if (!child) {
        g_fork.parent(g_lock);
        return;
    }
    g_start_unix_ns = start_unix_ns;
    // Forked from a signal handler that interrupted this thread inside the log: glibc's heap,
    // which the logger allocates from, may be halfway through a change here (fork.cpp). A new
    // logger would allocate from it, so this child does not log.
    bool interrupted = g_host->in_logger();
    for (Log& log : g_logs) {
        if (interrupted && log.attached && !log.failed) {
            log.failed = true;
            char line[160];
            int n = std::snprintf(line, sizeof line,
                                  "chainalloc: pid %d was forked from a signal handler that interrupted the log; it does not log\n",
                                  static_cast<int>(getpid()));
            write_formatted(line, n);
        }
        log.modules_written = 0;
        if (!log.logger) continue;
        // The parent's logger object is abandoned, not destroyed (its destructor would
        // flush into the parent's file); its descriptor is closed so no byte reaches it.
        log.sink->abandon();
        if (log.fd != STDERR_FILENO) {
            NoCancel no_cancel;
            ::close(log.fd);
        }
        log.logger = nullptr;
        log.sink = nullptr;
        log.fd = -1;
    }
    // The child's files list the modules and stacks again, from the tables it inherited.
    call_stacks::after_fork_child();
    modules::after_fork_child();
    g_fork.child(g_lock);
}

}  // namespace chainalloc::preload::event_log_file

extern "C" __attribute__((visibility("default"))) const chainalloc::preload::LogPlugin* chainalloc_log_plugin(
    const chainalloc::preload::LogHost* host) {
    namespace log = chainalloc::preload::event_log_file;
    static const chainalloc::preload::LogPlugin plugin = {log::attach, log::write, log::close_all,
                                                          log::before_fork, log::after_fork};
    log::g_host = host;
    return &plugin;
}
