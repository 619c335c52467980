// No thread inside libunwind while the process forks.
//
// libunwind takes mutexes of its own while it walks a stack (its caches). A fork while another
// thread holds one leaves the child a lock that nobody will release, and the child's first
// unwind hangs forever; its parent then waits forever for it (the soak found this: one run in
// about 25, a fork child stuck in unw_backtrace). So a thread marks itself before it unwinds
// and then looks for a fork under way; the forking thread raises that flag and then waits
// until no thread is marked. Each side stores, then loads, both sequentially consistent
// (Dekker): one of them sees the other. A thread that finds a fork under way does not wait for
// it, since it may hold a lock the forker needs (the loader's, in a dlopen that allocates): its
// allocation is logged without a stack (stacks_dropped). The marks are per thread, each on a
// cache line of its own (the first 63 threads; later ones share a counter), so unwinding
// threads do not contend.
#pragma once

namespace chainalloc::preload::unwind_gate {

/// Before unw_backtrace: false while a fork is under way (then do not unwind, nor call leave).
bool enter() noexcept;
void leave() noexcept;

/// Called by the log's fork handlers, only in a process with threads: before_fork returns
/// once no other thread is inside libunwind. A signal handler that forks while its own thread
/// is unwinding does not wait for itself (that child may still hang on libunwind's lock; no
/// way around it short of not unwinding in signal handlers).
void before_fork() noexcept;
void after_fork(bool child) noexcept;

}  // namespace chainalloc::preload::unwind_gate
