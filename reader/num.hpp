// The two kinds of figures a scan adds up, as the Python reader's numbers behave.
// Unsampled and address-sampled logs count whole blocks: exact integers (Int). Logs sampled by
// bytes weigh each block 1/p(size): Python's sum is an int until the first float weight is
// added to it and a float after, so Flt keeps the double and whether it became a float (the
// JSON then says 3 or 3.0 as Python would hold it).
#pragma once

#include <cmath>
#include <cstdint>

namespace logscan {

// Python's ints have no bound; an Int says when it left int64's range (then the scan is not
// Python's, and the program says so: see ScanSink::exact).
struct Int {
  std::int64_t v = 0;
  static inline bool overflowed = false;   // one scan per process
  Int() = default;
  constexpr Int(std::int64_t x) : v(x) {}
  Int& operator+=(Int o) { overflowed |= __builtin_add_overflow(v, o.v, &v); return *this; }
  Int& operator-=(Int o) { overflowed |= __builtin_sub_overflow(v, o.v, &v); return *this; }
  friend Int operator-(Int a, Int b) { return a -= b; }
  friend Int operator*(std::int64_t size, Int w) {
    Int r;
    overflowed |= __builtin_mul_overflow(size, w.v, &r.v);
    return r;
  }
  friend bool operator<(Int a, Int b) { return a.v < b.v; }
  friend bool operator>(Int a, Int b) { return a.v > b.v; }
};

struct Flt {
  double v = 0;
  bool f = false;   // a float weight went into it
  Flt() = default;
  constexpr Flt(int i) : v(i) {}
  constexpr Flt(double d, bool is_float) : v(d), f(is_float) {}
  Flt& operator+=(Flt o) { v += o.v; f |= o.f; return *this; }
  Flt& operator-=(Flt o) { v -= o.v; f |= o.f; return *this; }
  friend Flt operator-(Flt a, Flt b) { return a -= b; }
  friend Flt operator*(std::int64_t size, Flt w) { return Flt(static_cast<double>(size) * w.v, w.f); }
  friend bool operator<(Flt a, Flt b) { return a.v < b.v; }
  friend bool operator>(Flt a, Flt b) { return a.v > b.v; }
};

inline double as_double(Int x) { return static_cast<double>(x.v); }
inline double as_double(Flt x) { return x.v; }

// Weight of a sampled block: 1 / -expm1(-max(size, 1) / N) (LOG-FORMAT.md, Sampling), the
// same libm call as Python's math.expm1 and the same correctly rounded division (sizes and N
// below 2^53 convert exactly).
inline double byte_weight(std::int64_t size, double mean) {
  double s = static_cast<double>(size < 1 ? 1 : size);
  return 1.0 / -std::expm1(-(s / mean));
}

}  // namespace logscan
