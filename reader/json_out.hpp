// A minimal buffered JSON writer for the scan's one object on stdout. Strings are the log's
// bytes, each byte one code point (Latin-1), so Python gets the bytes back with
// str.encode('latin-1') whatever they are; numbers are printed so that Python's json reads
// the same int, or the same float, as its own scan holds.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <unistd.h>

#include "num.hpp"

namespace logscan {

class JsonOut {
 public:
  explicit JsonOut(int fd) : fd_(fd) { buf_.reserve(kFlush + 256); }
  ~JsonOut() { flush(); }

  JsonOut& raw(std::string_view s) {
    buf_.append(s);
    return maybe_flush();
  }
  JsonOut& num(std::int64_t v) { return integer(v); }
  JsonOut& num(std::uint64_t v) { return integer(v); }
  JsonOut& num(Int x) { return integer(x.v); }
  JsonOut& num(Flt x) {
    if (!x.f) return integer(static_cast<std::int64_t>(x.v));   // still a Python int
    char b[32];
    auto r = std::to_chars(b, b + sizeof b, x.v);   // shortest text that reads back the same
    std::string_view s(b, static_cast<std::size_t>(r.ptr - b));
    buf_.append(s);
    if (s.find_first_of(".en") == std::string_view::npos) buf_.append(".0");   // a float
    return maybe_flush();
  }
  JsonOut& str(std::string_view bytes);
  JsonOut& boolean(bool b) { return raw(b ? "true" : "false"); }
  bool flush();

 private:
  template <class T> JsonOut& integer(T v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v);
    buf_.append(b, static_cast<std::size_t>(r.ptr - b));
    return maybe_flush();
  }
  JsonOut& maybe_flush() {
    if (buf_.size() >= kFlush) flush();
    return *this;
  }
  static constexpr std::size_t kFlush = 1 << 20;
  int fd_;
  std::string buf_;
  bool failed_ = false;
};

}  // namespace logscan
