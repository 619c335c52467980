// The thread life cycle: a thread registers on its first slow-path call, and a pthread key's
// destructor gives its cached blocks back when it ends.
#include "runtime.hpp"

#include <pthread.h>

namespace chainalloc::preload {

namespace {

pthread_key_t g_exit_key;

// Runs at thread exit (pthread key destructor, after the thread's C++ thread_local
// destructors). Flush, then flag: the layers find the thread's caches only while it is active,
// and the flush allocates nothing, so nothing comes in between. Anything the thread still
// allocates or frees after this (later key destructors, glibc's own teardown) bypasses the
// caches and goes to the central lists, so nothing is stranded in a dead thread's TLS.
void on_thread_exit(void*) noexcept {
    g_rt.chain.flush_thread();
    t_local.state.mode = ThreadMode::exiting;
}

// Once per thread, on its first slow-path call after initialisation. The mode is set before
// pthread_setspecific, which may allocate (keys past the first 32): that call then sees an
// active thread and does not recurse here.
}  // namespace

void register_thread() noexcept {
    t_local.state.mode = ThreadMode::active;
    pthread_setspecific(g_exit_key, &t_local);  // any non-null value makes the destructor run
}

void thread_life_init() noexcept { pthread_key_create(&g_exit_key, on_thread_exit); }

}  // namespace chainalloc::preload
