// The compact log (format version 2, preload/compact_format.hpp) as records: its threads' chunks
// merged by time and decoded into the very lines of a version 1 log, which the text source's
// parser then reads. The Python reader does the same (scripts/chainalloc_log/compact.py), so
// both passes give one answer, and this file owns only the decoding: the lines are
// byte-for-byte those of compact.decode_lines.
#pragma once

#include <cstdint>
#include <string>

#include "record.hpp"

namespace logscan {

class Progress;

struct CompactSourceOptions {
  int fd = 0;
  std::uint64_t header_len = 0;  // bytes of the header line, its newline included
  bool after_header = false;     // fd is a stream already past the header (a pipe)
  unsigned layers = 0;
  Progress* progress = nullptr;
};

bool read_compact_log(const CompactSourceOptions& opt, RecordSink& sink, std::string& error);

}  // namespace logscan
