// The v1 text log (scripts/LOG-FORMAT.md) as records: reads the lines after the header and
// hands each to a RecordSink, deciding event / stack / module / footer / comment / malformed
// exactly as the Python reader's _scan_events does.
#pragma once

#include <cstdint>
#include <string>

#include "record.hpp"

namespace logscan {

class Progress;

struct TextSourceOptions {
  int fd = 0;
  std::uint64_t offset = 0;   // where the lines start (after the header line), for a file
  unsigned layers = 0;        // how many layers the header names: valid layer indexes
  Progress* progress = nullptr;
};

// Reads to the end of fd. False on a read error, with the reason in `error`.
bool read_text_log(const TextSourceOptions& opt, RecordSink& sink, std::string& error);

}  // namespace logscan
