#include "progress.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace logscan {

namespace {
constexpr double kEvery = 0.25;   // seconds between updates, as parse.Progress.EVERY

void write_all(const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(2, p, n);
    if (w <= 0) return;   // stderr gone: progress is not worth failing the read for
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}
}  // namespace

Progress::Progress(std::string name, std::uint64_t total, double delay)
    : name_(std::move(name)), total_(total), start_(now()), next_(start_ + delay) {}

double Progress::now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void Progress::at(std::uint64_t offset) {
  double t = now();
  if (t < next_) return;
  next_ = t + kEvery;
  double mb = static_cast<double>(offset) / 1e6;
  double rate = mb / std::max(t - start_, 1e-6);
  char line[512];
  int n;
  if (total_) {
    n = std::snprintf(line, sizeof line, "\rreading %s: %3d%% (%.0f of %.0f MB, %.0f MB/s)\x1b[K",
                      name_.c_str(), static_cast<int>(100 * offset / total_), mb,
                      static_cast<double>(total_) / 1e6, rate);
  } else {
    n = std::snprintf(line, sizeof line, "\rreading %s: %.0f MB (%.0f MB/s)\x1b[K",
                      name_.c_str(), mb, rate);
  }
  if (n > 0) write_all(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
  shown_ = true;
}

void Progress::finish() {
  if (shown_) write_all("\r\x1b[K", 4);
}

}  // namespace logscan
