#include "pyint.hpp"

#include <limits>

namespace logscan {

namespace {

int digit_of(char c, int base) {
  int d;
  if (c >= '0' && c <= '9') d = c - '0';
  else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
  else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
  else return -1;
  return d < base ? d : -1;
}

}  // namespace

PyInt parse_pyint(std::string_view s, int base) {
  PyInt r;
  std::size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  bool underscore_ok = false;   // an underscore may follow a digit, or the 0x prefix
  if (base == 16 && i + 1 < s.size() && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    i += 2;
    underscore_ok = true;
  }
  // Accumulated as a magnitude in unsigned 64 bits; past that only the syntax is checked.
  std::uint64_t mag = 0;
  const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1;
  bool any = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_') {
      if (!underscore_ok) return r;
      underscore_ok = false;
      if (i + 1 == s.size()) return r;   // no trailing underscore
      continue;
    }
    int d = digit_of(c, base);
    if (d < 0) return r;
    any = true;
    underscore_ok = true;
    if (!r.overflow) {
      if (mag > (limit - d) / base) r.overflow = true;
      else mag = mag * base + d;
    }
  }
  if (!any) return r;
  r.ok = true;
  if (!neg && mag == limit) r.overflow = true;
  if (r.overflow) {
    r.value = neg ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max();
  } else {
    r.value = neg ? static_cast<std::int64_t>(0 - mag) : static_cast<std::int64_t>(mag);
  }
  return r;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace logscan
