// The proxy's event log: one file per process and proxy layer, compact records or text lines,
// written through spdlog sinks of ours (format: scripts/LOG-FORMAT.md). Callers hand over
// events; this file owns the files and the process life cycle (lazy open inside malloc, fork,
// exit). Records go into a shared mapping of the file, so exec, abort and kill lose none.
//
// Every function here runs inside a LoggerScope (runtime.hpp) set by the caller, so whatever
// spdlog, fmt and libc allocate meanwhile comes from glibc, unlogged, and never recurses here.
#pragma once

#include "config/chain_spec.hpp"
#include "log_plugin.hpp"

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload::event_log {

/// Remembers where layer `layer` logs; the file is created with the first line.
void attach(unsigned layer, const config::ProxySpec& spec, LogClock clock) noexcept;

/// Appends one event to the layer's log; an allocation gets the id of the caller's call stack
/// when the layer logs stacks.
void write(unsigned layer, const LogEvent& event) noexcept;

/// Writes the footer line of every open log and flushes; lines that still come (threads
/// running during exit, late destructors) are written straight through after it.
void close_all(unsigned layer, const char* footer, std::size_t len) noexcept;

// fork (fork.cpp calls these in its lock order): before_fork, only in a process with threads,
// takes the log lock (unless this thread holds it) and flushes; after_fork releases it; the
// child drops the parent's files (never writing to them) and opens its own, with its own pid,
// on its first event.
void before_fork() noexcept;
void after_fork(bool child, LogClock clock) noexcept;

}  // namespace chainalloc::preload::event_log
