// The packed log (format version 3, packed_format.hpp) as records: its body decoded into the
// very lines of a version 1 log, which the text source's parser reads. The Python reader
// decodes the same lines (scripts/chainalloc_log/packed.py), so both passes give one answer.
#pragma once

#include <string>

#include "record.hpp"

namespace logscan {

class Progress;

// Reads the body (after the header line) from fd, a stream: logscan.py feeds it decompressed.
bool read_packed_log(int fd, unsigned layers, Progress* progress, RecordSink& sink, std::string& error);

}  // namespace logscan
