// Finding a plugin's entry point (log_plugin.hpp, jemalloc_plugin.hpp): in the process first (a
// preloaded plugin, or one linked in, as in the fuzzer), then by dlopen of `file` from the
// directory libchainalloc.so was loaded from (the build directory, or the install's libdir).
// Runs during initialisation: what the loader allocates comes from the bootstrap arena.
#pragma once

namespace chainalloc::preload {

/// The entry point, or nullptr with `why` set to the loader's reason (or nullptr).
void* find_plugin(const char* entry, const char* file, const char*& why) noexcept;

}  // namespace chainalloc::preload
