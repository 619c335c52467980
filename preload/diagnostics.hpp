// The log plugin's own diagnostics (a log that cannot be created or grow, a child that does not
// log): one line each on stderr, through an spdlog logger like the log itself. The logger is
// made at attach, while the process is single-threaded and its heap sound, so that a line
// later allocates nothing (lines stay within spdlog's inline buffer): one may have to be said
// in a fork child whose heap is halfway through a change (event_log.cpp, after_fork).
#pragma once

#include <cstddef>

namespace chainalloc::preload::diagnostics {

/// Makes the logger (once). Without it (out of memory), lines go straight to stderr.
void init() noexcept;

/// `text`, one line with its newline, as snprintf returned its length (n < 0: nothing).
void say(const char* text, int n) noexcept;

}  // namespace chainalloc::preload::diagnostics
