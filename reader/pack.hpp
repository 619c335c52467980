// `chainalloc-logscan --pack`: a log's records (from the text or the compact source) written
// as a packed log's body (packed_format.hpp) on a file descriptor; logscan.py puts the header
// line before it and zstd around it.
#pragma once

#include <memory>

#include "record.hpp"

namespace logscan {

class PackSink : public RecordSink {
 public:
  // False once the log held something a pack cannot say (a number spelled unusually), or a
  // write failed; `error` says which.
  virtual bool ok(std::string& error) const = 0;
};

std::unique_ptr<PackSink> make_pack(int fd);

}  // namespace logscan
