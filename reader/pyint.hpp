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
// Inline: they run on most words of every line.
inline bool canonical_dec(std::string_view s, std::uint64_t& value) {
  // At most 19 digits: always within uint64.
  if (s.empty() || s.size() > 19 || (s[0] == '0' && s.size() > 1)) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    unsigned d = static_cast<unsigned char>(c) - '0';
    if (d > 9) return false;
    v = v * 10 + d;
  }
  value = v;
  return true;
}

inline bool canonical_hex(std::string_view s, std::uint64_t& value) {
  if (s.empty() || s.size() > 16 || (s[0] == '0' && s.size() > 1)) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    unsigned d = static_cast<unsigned char>(c) - '0';
    if (d > 9) {
      d = static_cast<unsigned char>(c) - 'a';
      if (d > 5) return false;
      d += 10;
    }
    v = v << 4 | d;
  }
  value = v;
  return true;
}

// bytes.isdigit(): non-empty, ASCII digits only.
bool all_digits(std::string_view s);

}  // namespace logscan
