// fork(): which locks the preload takes around it, in which order, and what the child resets.
//
// glibc locks its own malloc inside fork() itself, last: after the atfork prepare handlers and
// after stdio's list lock, because a thread holding a stdio lock may be inside malloc (glibc
// bug 19431). A replacement malloc only has atfork handlers, whose prepare step runs before
// fork takes stdio's lock. So ours takes stdio's list lock itself, first (_IO_list_lock is
// recursive: fork takes it again harmlessly, and resets it in the child), then the log's
// lock, then the central lists, then jemalloc's locks: the order in which a thread in malloc
// nests them. Handlers run in reverse order of registration, and ours are registered at the
// process's first malloc, before any library constructor registers its own, so our prepare
// runs after every other prepare handler, whose code may still call malloc.
//
// Like glibc, a single-threaded process takes no lock at all: the only thread that could
// hold one is this one, interrupted by a signal handler that forks (glibc's tst-mallocfork2).
// Threads or not, a lock the forking thread holds itself is never waited for (ForkGuard), and
// the child releases everything: it has no other thread, and when the fork came from a signal
// handler that never returns, the interrupted code never would.
//
// jemalloc (linked into this object) registers handlers of its own from its constructor. They
// would lock its arenas in every process, chain or not, before our prepare handler and so
// outside the order above. Its registration is intercepted (__register_atfork below) and its
// handlers run from ours, in order, only when the chain ends in jemalloc.
#include "fork.hpp"

#include "proxy_events.hpp"
#include "runtime.hpp"

#include <cerrno>
#include <cstring>

#include <dlfcn.h>
#include <sys/single_threaded.h>

extern "C" {
// stdio's list lock (exported by glibc, declared in no public header).
void _IO_list_lock() noexcept;
void _IO_list_unlock() noexcept;
}

namespace chainalloc::preload {
namespace {

using Handler = void (*)();
using RegisterFn = int (*)(Handler, Handler, Handler, void*);

struct ForeignHandlers {
    Handler prepare, parent, child;
};

constinit ForeignHandlers g_jemalloc{};  // jemalloc's own handlers, held back
bool g_locked = false;                   // prepare took the locks (the process had threads)

bool jemalloc_in_chain() noexcept {
    return g_rt.count > 0 && g_rt.layers[g_rt.count - 1].kind == LayerKind::jemalloc;
}

void prepare() noexcept {
    g_locked = !__libc_single_threaded;
    if (!g_locked) return;
    _IO_list_lock();
    proxy_before_fork();
    g_rt.chain.fork_prepare();  // the layers that have locks: the freelists' central lists
    if (jemalloc_in_chain() && g_jemalloc.prepare) g_jemalloc.prepare();
}

void parent() noexcept {
    if (!g_locked) return;
    if (jemalloc_in_chain() && g_jemalloc.parent) g_jemalloc.parent();
    g_rt.chain.fork_parent();
    proxy_after_fork(false);
    _IO_list_unlock();
}

// fork() has already reset stdio's list lock here, in the threaded case.
void child() noexcept {
    // jemalloc's child handler re-creates its mutexes: as good as a release, locked or not.
    if (jemalloc_in_chain() && g_jemalloc.child) g_jemalloc.child();
    g_rt.chain.fork_child();
    proxy_after_fork(true);  // sees whether this thread was inside the event log (see below)
    // A signal handler that forked may have interrupted this thread inside the event log, whose
    // allocations are glibc's: glibc's heap may be halfway through a change in this child, and
    // in the log's mode the child's own requests would go there too. They go to the chain
    // instead, bypassing the caches as a thread that is ending does (always safe); if the
    // interrupted code resumes, its LoggerScope puts the mode back. The child does not log.
    if (in_logger()) t_local.state.mode = ThreadMode::exiting;
    g_locked = false;
}

// glibc's __register_atfork, found past this object. Looked up on first use: dlvsym may
// allocate, which is fine here (no lock of ours is held).
RegisterFn real_register() noexcept {
    static RegisterFn fn = nullptr;
    if (!fn) fn = reinterpret_cast<RegisterFn>(dlvsym(RTLD_NEXT, "__register_atfork", "GLIBC_2.3.2"));
    return fn;
}

// True when `code` is in jemalloc's library (loaded by the jemalloc plugin, whose arenas it
// serves; its constructor may register before our initialisation, so the test is by name).
bool in_jemalloc(Handler code) noexcept {
    Dl_info where;
    return code && dladdr(reinterpret_cast<void*>(code), &where) && where.dli_fname &&
           std::strstr(where.dli_fname, "/libjemalloc.so");
}

}  // namespace

void register_fork_handlers() noexcept {
    if (RegisterFn reg = real_register()) reg(prepare, parent, child, nullptr);
}

}  // namespace chainalloc::preload

// Every pthread_atfork call of another object lands here (pthread_atfork is a stub linked into
// each object, which calls this). All but jemalloc's are passed on unchanged, with the
// caller's object handle, so dlclose still removes them.
extern "C" __attribute__((visibility("default"))) int __register_atfork(void (*prepare)(), void (*parent)(),
                                                                       void (*child)(), void* dso) noexcept {
    using namespace chainalloc::preload;
    if (in_jemalloc(prepare) || in_jemalloc(child)) {
        g_jemalloc = {prepare, parent, child};
        return 0;
    }
    RegisterFn reg = real_register();
    return reg ? reg(prepare, parent, child, dso) : ENOMEM;
}
