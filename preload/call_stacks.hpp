// Call stacks of allocations, for the event log plugin (docs/DESIGN.md §5): unwound with
// libunwind's unw_backtrace, chainalloc's own leading frames dropped, and kept once each in a
// table shared by all threads without a lock. The log writes a stack (`#S id frames`) the
// first time one of its events refers to it; events carry the id.
//
// unw_backtrace is safe inside malloc: libunwind takes its memory from its own mmap'd pools,
// and whatever else runs meanwhile (the loader's dl_iterate_phdr, the first touch of its
// thread-local cache) runs inside the caller's LoggerScope, so an allocation there is glibc's,
// never the chain's and never logged. Seen under gdb: the first call on a thread mallocs once
// (libunwind's dynamic TLS block, by __tls_get_addr), later calls allocate nothing. The table
// is mmap'd at attach and never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload::call_stacks {

struct Stack;

struct Captured {
    Stack* stack;  // nullptr: no stack (no frame outside chainalloc, or the table is full)
    bool fresh;    // this call added it to the table
};

/// Maps the table (once; at attach, which runs before any other thread can log).
bool init() noexcept;

/// The calling thread's stack, at most `depth` frames after chainalloc's own.
Captured capture(std::uint32_t depth) noexcept;

/// How many stacks did not fit the table (their events went out without one).
std::uint64_t dropped() noexcept;

std::uint32_t id(const Stack& s) noexcept;
std::uint32_t depth(const Stack& s) noexcept;
const std::uintptr_t* frames(const Stack& s) noexcept;

/// True for exactly one caller per stack, layer and file (a fork child's files are new): the
/// one that writes the stack into that file. Lock-free.
bool claim(Stack& s, unsigned layer) noexcept;
/// Already claimed for that file (a relaxed load: claim decides).
bool claimed(Stack& s, unsigned layer) noexcept;

/// In a fork child: its files are new, so every stack is written again when next used.
void after_fork_child() noexcept;

}  // namespace chainalloc::preload::call_stacks
