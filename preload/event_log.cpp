// The event log plugin (libchainalloc-log.so, see log_plugin.hpp): what event_log.hpp promises,
// loaded by the preload when the chain has a proxy. Its own namespace: a build that links the
// plugin in (the fuzzer) also has the preload's forwarding functions of event_log.hpp.
#include "call_stacks.hpp"
#include "chainalloc/spin_lock.hpp"
#include "chunk_file.hpp"
#include "compact_format.hpp"
#include "compact_sink.hpp"
#include "log_plugin.hpp"
#include "modules.hpp"
#include "output_file.hpp"
#include "text_line.hpp"
#include "text_sink.hpp"
#include "unwind_gate.hpp"
#include "diagnostics.hpp"
#include "write_all.hpp"

#include <spdlog/logger.h>

#include <atomic>

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

// One proxy's log. Written once, under g_lock, when the file opens (`open` publishes it); the
// compact form then writes without any lock, the text form under g_lock.
struct Log {
    config::ProxySpec spec;
    bool attached = false;
    std::atomic<bool> failed{false};   // could not open: events are counted, not written (relaxed)
    std::atomic<bool> open{false};
    spdlog::logger* logger = nullptr;  // never deleted: in use until the process is gone
    TextSink* text = nullptr;          // one of the two sinks
    CompactSink* compact = nullptr;
    ChunkFile* file = nullptr;         // the compact sink's
    int fd = -1;
    std::atomic<std::size_t> modules_written{0};  // modules::at(0 .. this) are in this file
};

const LogHost* g_host = nullptr;  // the preload's side, set by the entry point
Log g_logs[config::kMaxLayers];
LogClock g_clock{0, 0};  // the moment the log's t_ns count from
SpinLock g_lock;  // the text logs' (a realloc's line and a free's line keep their order) and opening
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
// the stack of a thread made with a small one. The buffer has room for a newline after the NUL.
char* make_header(Log& log, unsigned version) {
    static char chain[config::kMaxChainText];
    static char header[config::kMaxChainText * 3 + 16384 + 1];
    char layers[128] = "";
    g_host->describe_chain(chain, sizeof chain, layers, sizeof layers);
    std::snprintf(header, sizeof header,
                  "# chainalloc-log %u pid=%d ppid=%d program=", version,
                  static_cast<int>(getpid()), static_cast<int>(getppid()));
    put_escaped(header, sizeof header, program_invocation_short_name, std::strlen(program_invocation_short_name), "");
    put_argv(header, sizeof header);
    std::size_t n = std::strlen(header);
    std::snprintf(header + n, sizeof header - n, " page=%ld start_unix_ns=%lld sample=%u%s events=%s stacks=%u layers=%s chain=",
                  sysconf(_SC_PAGESIZE), static_cast<long long>(g_clock.unix_ns), log.spec.sample ? log.spec.sample : 1,
                  log.spec.sample > 1 ? " sampling=bytes" : "",  // tells it from v1's address hash
                  log.spec.events == config::Events::summary ? "summary" : "all", log.spec.stacks, layers);
    put_escaped(header, sizeof header - 1, chain, std::strlen(chain), "/, ");
    return header;
}

void report_open_failure(const char* path, const char* why) noexcept {
    char line[kPathCap + 200];
    int n = std::snprintf(line, sizeof line, "chainalloc: cannot create the log '%s': %s (events are counted, not logged)\n",
                          path, why);
    diagnostics::say(line, n);
}

// The compact form needs a mappable regular file; anything else (stderr, a pipe) is written as
// text. Under g_lock.
bool open_compact(Log& log, const char* path) {
    struct stat st;
    if (log.spec.format != config::LogFormat::compact || fstat(log.fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    char* header = make_header(log, logformat::kVersion);
    std::size_t len = std::strlen(header);
    header[len++] = '\n';
    static char paths[config::kMaxLayers][kPathCap];  // the file's name, for its diagnostics
    char* name = paths[&log - g_logs];
    std::snprintf(name, kPathCap, "%s", path);
    auto* file = new ChunkFile;
    if (!file->open(log.fd, name, header, len)) {
        delete file;
        return false;
    }
    auto sink = std::make_shared<CompactSink>(*file, static_cast<unsigned>(&log - g_logs), g_clock);
    log.logger = new spdlog::logger("chainalloc", sink);
    log.file = file;
    log.compact = sink.get();
    return true;
}

// First event of the process: create the file and the spdlog logger (allocations here are the
// logger's own, served by glibc; the objects live as long as the process). Anything spdlog
// throws (bad_alloc) ends the log, never the program. Under g_lock.
bool ensure_open(Log& log) noexcept {
    if (log.logger) return true;
    if (log.failed || !log.attached) return false;
    char path[kPathCap];
    const char* why = nullptr;
    const char* pattern = log.spec.log[0] ? log.spec.log : "chainalloc.%e.%p.log";
    log.fd = g_host->open_output(pattern, log.spec.mode, path, sizeof path, why);
    if (log.fd < 0) {
        log.failed.store(true, std::memory_order_relaxed);
        report_open_failure(path, why ? why : std::strerror(errno));
        return false;
    }
    try {
        if (!open_compact(log, path)) {
            auto sink = std::make_shared<TextSink>(log.fd, path);
            sink->set_pattern("%v");
            log.logger = new spdlog::logger("chainalloc", sink);
            log.text = sink.get();
            const char* header = make_header(log, 1);
            log.logger->log(spdlog::level::info, spdlog::string_view_t(header, std::strlen(header)));
        }
        log.logger->set_level(spdlog::level::info);
        log.logger->flush_on(spdlog::level::off);  // we flush: buffer full, fork, exit
        log.open.store(true, std::memory_order_release);
        return true;
    } catch (...) {
        log.failed.store(true, std::memory_order_relaxed);
        log.logger = nullptr;
        log.text = nullptr;
        log.compact = nullptr;
        if (log.fd != STDERR_FILENO) {
            NoCancel no_cancel;
            ::close(log.fd);
        }
        log.fd = -1;
        report_open_failure(path, "out of memory for the logger");
        return false;
    }
}

// The log is open (after the first event, one load), or opens now under g_lock. A log that
// could not open is not asked again (no lock per event for nothing).
[[gnu::noinline]] bool open_now(Log& log) noexcept {
    if (log.failed.load(std::memory_order_relaxed)) return false;
    LockGuard guard(g_lock);
    return ensure_open(log);
}
inline bool ready(Log& log) noexcept { return log.open.load(std::memory_order_acquire) || open_now(log); }

// Text lines go to the logger's sink directly: spdlog::logger would only add its level checks
// and a second clock read per event (the line carries its own time). Same formatter, same
// sink; measured 10-15% of an event's cost. Called under g_lock.
void put(Log& log, const char* line, std::size_t len) noexcept {
    try {
        spdlog::details::log_msg msg(spdlog::log_clock::time_point{}, spdlog::source_loc{}, "chainalloc",
                                     spdlog::level::info, spdlog::string_view_t(line, len));
        log.text->log(msg);
    } catch (...) {
        // Out of memory in the formatter: this line is lost, the program goes on.
    }
}

// `#M base lo hi build-id path`, as text.
void put_module_line(Log& log, const modules::Module& m) noexcept {
    static char text[modules::kMaxModulePath * 3 + 2 * modules::kMaxBuildId + 96];  // under g_lock
    Line head;
    head.put("#M");
    for (std::uintptr_t v : {m.base, m.lo, m.hi}) head.sp().hex(v);
    head.sp();
    if (!m.build_id_len) head.put('-');
    std::memcpy(text, head.text, head.len);
    std::size_t len = head.len;
    for (std::uint32_t i = 0; i < m.build_id_len; ++i) {
        text[len++] = "0123456789abcdef"[m.build_id[i] >> 4];
        text[len++] = "0123456789abcdef"[m.build_id[i] & 15];
    }
    text[len++] = ' ';
    text[len] = '\0';
    put_escaped(text, sizeof text, m.path, std::strlen(m.path), "/");
    put(log, text, std::strlen(text));
}

// The modules this file has not listed yet, each claimed by one thread (the compact form has no
// lock here). Never scans: the table is only read.
void write_modules(Log& log) noexcept {
    std::size_t n = modules::count();
    for (std::size_t k = log.modules_written.load(); k < n;) {
        if (!log.modules_written.compare_exchange_weak(k, k + 1)) continue;
        if (log.compact) log.compact->module(k, modules::at(k));
        else put_module_line(log, modules::at(k));
        ++k;
    }
}

// A stack, the first time this file meets it, after any module it may lie in. Text: `#S id
// frame...` under g_lock; compact: a record, by the thread that claims it.
void write_stack(Log& log, unsigned layer, call_stacks::Stack& stack) noexcept {
    if (log.modules_written.load() != modules::count()) write_modules(log);
    if (call_stacks::claimed(stack, layer)) return;  // the usual case: no clock read
    // Stamped before the claim: an event of another thread that finds the stack claimed is
    // stamped after it (the clock reads after the load that saw the claim, tsc_clock.hpp).
    std::uint64_t t = log.compact ? log.compact->now() : 0;
    if (!call_stacks::claim(stack, layer)) return;
    const std::uintptr_t* f = call_stacks::frames(stack);
    if (log.compact) return log.compact->stack(call_stacks::id(stack), modules::count(), f, call_stacks::depth(stack), t);
    static char text[32 + config::kMaxStackDepth * 17];  // under g_lock
    Line head;
    head.put("#S ");
    head.dec(call_stacks::id(stack));
    std::memcpy(text, head.text, head.len);
    std::size_t len = head.len;
    for (std::uint32_t i = 0; i < call_stacks::depth(stack); ++i) {
        Line frame;
        frame.sp().hex(f[i]);
        std::memcpy(text + len, frame.text, frame.len);
        len += frame.len;
    }
    put(log, text, len);
}

// "t_ns tid op fields [stack]" (LOG-FORMAT.md, version 1).
void put_event_line(Log& log, const LogEvent& e, std::uint32_t stack) noexcept {
    auto pointer = [](Line& line, std::uintptr_t p) {
        if (p == LogEvent::kUnsampled) line.sp().put('-');
        else line.sp().hex(p);
    };
    Line line;
    line.dec(g_clock.since());
    line.sp().dec(e.tid);
    line.sp().put(e.op);
    if (e.op == 'f') {
        pointer(line, e.ptr);
        return put(log, line.text, line.len);
    }
    if (e.op == 'a') line.sp().dec(e.align);
    if (e.op == 'r') pointer(line, e.old);
    line.sp().dec(e.size);
    pointer(line, e.ptr);
    line.sp();
    if (e.layer == LogEvent::kFailed) line.put('-');
    else line.dec(e.layer);
    if (stack) line.sp().dec(stack);
    put(log, line.text, line.len);
}

// The calling thread's stack, for an allocation in a log with stacks. Out of line, so that an
// event without one (a free, stacks=0) pays for none of it.
[[gnu::noinline]] call_stacks::Stack* capture_stack(const Log& log) noexcept {
    // libunwind checks a frame pointer it cannot vouch for with read() on a pipe of its own,
    // a cancellation point: a cancel there would unwind through this noexcept code.
    NoCancel no_cancel;
    call_stacks::Captured stack = call_stacks::capture(log.spec.stacks);
    if (stack.fresh)
        modules::note_stack(call_stacks::frames(*stack.stack), call_stacks::depth(*stack.stack));
    else
        modules::rescan_if_wanted();
    return stack.stack;
}

// An event with its stack, in the text form, or the log's first: the rest of write().
[[gnu::noinline]] void write_slow(Log& log, unsigned layer, const LogEvent& event) noexcept {
    // The stack is taken before any lock: unwinding may enter the loader (dl_iterate_phdr),
    // and so may a rescan of the modules; neither may happen under g_lock (modules.hpp).
    call_stacks::Stack* stack = nullptr;
    if (event.op != 'f' && log.spec.stacks && !log.failed) stack = capture_stack(log);
    if (!ready(log)) return;
    std::uint32_t id = stack ? call_stacks::id(*stack) : 0;
    if (log.compact) {  // no lock: the thread's own chunk
        if (stack) write_stack(log, layer, *stack);
        return log.compact->event(event, id);
    }
    LockGuard guard(g_lock);
    if (stack) write_stack(log, layer, *stack);
    put_event_line(log, event, id);
}

}  // namespace

void attach(unsigned layer, const config::ProxySpec& spec, LogClock clock) noexcept {
    diagnostics::init();
    g_clock = clock;
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

void write(unsigned layer, const LogEvent& event) noexcept {
    Log& log = g_logs[layer];
    // The common case first, with nothing to save: an open compact log, no stack, no lock.
    bool stack = event.op != 'f' && log.spec.stacks;
    if (!stack && log.open.load(std::memory_order_acquire) && log.compact) return log.compact->event(event, 0);
    write_slow(log, layer, event);
}

void close_all(unsigned layer, const char* footer, std::size_t len) noexcept {
    Log& log = g_logs[layer];
    if (log.spec.stacks) modules::rescan();  // a module loaded since the last new stack; not under g_lock
    if (!ready(log)) return;
    LockGuard guard(g_lock);
    if (log.spec.stacks && log.modules_written.load() != modules::count()) write_modules(log);
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
        if (log.text) log.text->close_file();
        if (log.compact) log.compact->close();
    } catch (...) {
    }
}

// Called only in a process with threads (fork.cpp). A lock this thread holds itself (a signal
// handler forking from inside a log write) is not waited for, and its half-written sink is
// not flushed. Compact logs need nothing: their bytes are in the file as soon as written.
void before_fork() noexcept {
    unwind_gate::before_fork();  // first: an unwinding thread takes no lock of ours
    g_fork.prepare(g_lock);
    if (!g_fork.taken) return;
    for (Log& log : g_logs) {
        if (!log.text) continue;
        try {
            log.logger->flush();
        } catch (...) {
        }
    }
}

void after_fork(bool child, LogClock clock) noexcept {
    if (!child) {
        g_fork.parent(g_lock);
        unwind_gate::after_fork(false);
        return;
    }
    g_clock = clock;
    // Forked from a signal handler that interrupted this thread inside the log: glibc's heap,
    // which the logger allocates from, may be halfway through a change here (fork.cpp). A new
    // logger would allocate from it, so this child does not log.
    bool interrupted = g_host->in_logger();
    for (Log& log : g_logs) {
        if (interrupted && log.attached && !log.failed) {
            log.failed.store(true, std::memory_order_relaxed);
            char line[160];
            int n = std::snprintf(line, sizeof line,
                                  "chainalloc: pid %d was forked from a signal handler that interrupted the log; it does not log\n",
                                  static_cast<int>(getpid()));
            diagnostics::say(line, n);
        }
        log.modules_written.store(0);
        log.open.store(false);
        if (!log.logger) continue;
        // The parent's logger object is abandoned, not destroyed (its destructor would
        // flush into the parent's file); its descriptor is closed so no byte reaches it. A
        // compact file's mapping stays (a record interrupted by the signal that forked may
        // still be finished there, the same bytes the parent writes); the child's own sink
        // has a new generation, so no thread state points into it again.
        if (log.text) log.text->abandon();
        if (log.fd != STDERR_FILENO) {
            NoCancel no_cancel;
            ::close(log.fd);
        }
        log.logger = nullptr;
        log.text = nullptr;
        log.compact = nullptr;
        log.file = nullptr;
        log.fd = -1;
    }
    // The child's files list the modules and stacks again, from the tables it inherited.
    call_stacks::after_fork_child();
    modules::after_fork_child();
    unwind_gate::after_fork(true);
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
