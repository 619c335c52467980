// Python's int(text) and int(text, 16) on one word of a log line: which words they accept
// decides, in the Python reader, whether a line is an event or malformed, so the scanner
// accepts exactly the same ones: an optional sign, digits with single underscores between
// them, and for base 16 an optional 0x prefix (which an underscore may follow).
#pragma once

#include <cstdint>
#include <string_view>

namespace logscan {

struct PyInt {
  bool ok = false;          // Python would accept the word
  bool overflow = false;    // ... but its value does not fit an int64 (value is clamped)
  std::int64_t value = 0;
};

PyInt parse_pyint(std::string_view s, int base);

// Canonical spellings, the ones the proxy writes: decimal without sign or leading zero, and
// lowercase hex without prefix or leading zero. The value when `s` is one, else false.
bool canonical_dec(std::string_view s, std::uint64_t& value);
bool canonical_hex(std::string_view s, std::uint64_t& value);

// bytes.isdigit(): non-empty, ASCII digits only.
bool all_digits(std::string_view s);

}  // namespace logscan
