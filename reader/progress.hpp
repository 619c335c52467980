// The progress line of a long read, on stderr, as the Python reader's parse.Progress writes it
// (same text, same timing): first after `delay` seconds, then every quarter second,
// rewritten in place and cleared at the end.
#pragma once

#include <cstdint>
#include <string>

namespace logscan {

class Progress {
 public:
  Progress(std::string name, std::uint64_t total, double delay);
  void at(std::uint64_t offset);   // called after each read: bytes of the file read so far
  void finish();

 private:
  static double now();
  std::string name_;
  std::uint64_t total_;
  double start_, next_;
  bool shown_ = false;
};

}  // namespace logscan
