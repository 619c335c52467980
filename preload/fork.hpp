// The preload's fork handlers (fork.cpp): the lock order around fork() and the child's reset.
#pragma once

namespace chainalloc::preload {

/// Registers the atfork handlers; called once, from initialisation.
void register_fork_handlers() noexcept;

}  // namespace chainalloc::preload
