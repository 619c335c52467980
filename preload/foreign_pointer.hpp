// Pointers that no layer of ours owns, on their way to glibc (foreign_pointer.cpp).
#pragma once

namespace chainalloc::preload {

/// Records what glibc's blocks can't be: the main stack, the program's globals. Initialisation.
void foreign_pointer_init() noexcept;

/// nullptr if p may be a block of glibc's; otherwise why it is not.
const char* not_from_glibc(const void* p) noexcept;

/// "chainalloc: free(0x...): <why>; no layer of the chain owns it", then abort().
[[noreturn]] void abort_on_foreign(const char* call, const void* p, const char* why) noexcept;

}  // namespace chainalloc::preload
