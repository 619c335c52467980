// The proxy's event log: one text file per process and proxy layer, written through spdlog
// (format: scripts/LOG-FORMAT.md). Callers hand over finished lines; this file owns the
// files, the lock, and the process life cycle (lazy open inside malloc, fork, exit). Lines go
// into a shared mapping of the file, so exec, abort and kill lose none of them.
//
// Every function here runs inside a LoggerScope (runtime.hpp) set by the caller, so whatever
// spdlog, fmt and libc allocate meanwhile comes from glibc, unlogged, and never recurses here.
#pragma once

#include "config/chain_spec.hpp"

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload::event_log {

/// Remembers where layer `layer` logs; the file is created with the first line.
void attach(unsigned layer, const config::ProxySpec& spec, std::int64_t start_unix_ns) noexcept;

/// Appends one event line (without its newline) to the layer's log; an allocation's line gets
/// the id of the caller's call stack when the layer logs stacks (log_plugin.hpp).
void write(unsigned layer, const char* line, std::size_t len, bool allocation) noexcept;

/// Writes the footer line of every open log and flushes; lines that still come (threads
/// running during exit, late destructors) are written straight through after it.
void close_all(unsigned layer, const char* footer, std::size_t len) noexcept;

// fork (fork.cpp calls these in its lock order): before_fork, only in a process with threads,
// takes the log lock (unless this thread holds it) and flushes; after_fork releases it; the
// child drops the parent's files (never writing to them) and opens its own, with its own pid,
// on its first event.
void before_fork() noexcept;
void after_fork(bool child, std::int64_t start_unix_ns) noexcept;

}  // namespace chainalloc::preload::event_log
