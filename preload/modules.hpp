// The modules (executable, shared objects, the vDSO) loaded in the process, as the event log
// writes them (`#M` lines, scripts/LOG-FORMAT.md): path, load address, address range and GNU
// build id, so that a log's call stacks can be symbolized after the process is gone. Part of
// the event log plugin; the call stacks (call_stacks.hpp) decide when to look again.
//
// The table is append-only and read without a lock: an entry is filled, then published by
// the count (release). A module unloaded by dlclose stays in the table, marked gone; one
// loaded later at the same addresses gets a new entry, written after it, and the reader
// takes the latest module line that covers an address.
//
// Deadlock invariant: dl_iterate_phdr takes the loader's lock, and glibc calls malloc while
// holding that lock (dlopen, TLS set-up), which reaches the log. So the table is rescanned only
// (1) with no lock of ours held that malloc could wait for (never under the log's lock), and
// (2) under a try-lock that never waits: a thread that finds a rescan under way leaves it to
// that thread and flags `wanted`, so the next allocation tries again. No thread ever waits
// for anything while it holds, or may hold, the loader's lock. (The chain's own locks are not
// held either: the proxy's hooks run after the layers behind it have returned.)
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload::modules {

inline constexpr std::size_t kMaxModules = 1024;
inline constexpr std::size_t kMaxModulePath = 512;
inline constexpr std::size_t kMaxBuildId = 64;

struct Module {
    std::uintptr_t base;  // load bias: file address + base = run-time address
    std::uintptr_t lo, hi;  // run-time addresses of the PT_LOAD segments, [lo, hi)
    std::uint8_t build_id[kMaxBuildId];
    std::uint32_t build_id_len;  // 0: the module has no NT_GNU_BUILD_ID note
    bool ours;  // libchainalloc.so, this plugin or libunwind: their frames are not shown
    char path[kMaxModulePath];
};

/// The first scan, at attach (initialisation is single-threaded). `ours` gives addresses inside
/// the modules whose frames are dropped from stacks; n of them.
void init(const void* const* ours, std::size_t n) noexcept;

/// Modules published so far (never decreases), and one of them.
std::size_t count() noexcept;
const Module& at(std::size_t i) noexcept;

/// True when pc lies in a module whose frames are chainalloc's own (leading frames of a stack).
bool is_ours(std::uintptr_t pc) noexcept;

/// A new stack holds these addresses: rescans when one of them is outside every known module
/// or the loader's counts of loads and unloads moved. Call with no lock of ours held.
void note_stack(const std::uintptr_t* pcs, std::size_t n) noexcept;

/// Rescans if an earlier attempt found another thread scanning (one relaxed load otherwise).
void rescan_if_wanted() noexcept;

/// Unconditionally looks again (at exit, before the footer), unless a scan is under way.
void rescan() noexcept;

/// In a fork child: the scanning thread, if any, is gone with its try-lock.
void after_fork_child() noexcept;

}  // namespace chainalloc::preload::modules
