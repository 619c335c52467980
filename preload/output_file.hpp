// Files the preload writes from inside malloc (the event log, the statistics): a path pattern
// with %p and %e, created safely (output_file.cpp).
#pragma once

#include "config/chain_spec.hpp"

#include <cstddef>

namespace chainalloc::preload {

/// Room for an expanded path and its suffix.
inline constexpr std::size_t kPathCap = config::kMaxPath + 80;

/// A byte that may stand in a file name or a header field as it is: printable ASCII other than
/// a space, '%' and '/'.
constexpr bool plain(unsigned char c) noexcept { return c > ' ' && c < 0x7f && c != '%' && c != '/'; }

/// Opens `pattern` for writing ("-" or "stderr": standard error) and puts the name used in
/// path. Returns the descriptor, or -1 with errno set, or with `why` set when errno says
/// nothing useful. mode: the permissions of a new file (0 = 0600).
int open_output(const char* pattern, unsigned mode, char* path, std::size_t cap, const char*& why) noexcept;

}  // namespace chainalloc::preload
