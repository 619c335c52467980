#include "text_source.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

#include "line_parser.hpp"
#include "progress.hpp"
#include "pyint.hpp"

namespace logscan {

namespace {

// read() until `want` bytes or the end: a pipe hands out at most what it holds.
ssize_t read_full(int fd, char* p, std::size_t want) {
  std::size_t got = 0;
  while (got < want) {
    ssize_t r = ::read(fd, p + got, want - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

}  // namespace

bool read_text_log(const TextSourceOptions& opt, RecordSink& sink, std::string& error) {
  if (opt.offset && ::lseek(opt.fd, static_cast<off_t>(opt.offset), SEEK_SET) < 0) {
    error = std::strerror(errno);
    return false;
  }
  ::posix_fadvise(opt.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  LineParser parser(opt.layers, sink);
  // One buffer: the unfinished line carried over, then the next read behind it. A line longer
  // than a chunk grows it (as the Python reader's tail grows).
  std::vector<char> buf(2 * kChunk);
  std::size_t tail = 0;
  std::uint64_t offset = opt.offset;
  // Reads never cross a kChunk boundary of the stream, and the sink gets a checkpoint once the
  // lines that end before it are parsed: where the Python reader's 4 MiB reads end.
  std::size_t to_boundary = kChunk;
  while (true) {
    if (buf.size() < tail + to_boundary) buf.resize(tail + to_boundary);
    // A whole chunk per read: a pipe's writer (Python, decompressing a .gz) writes 4 MiB at a
    // time and decompresses the next only when that write is done, so taking the chunk at
    // once, rather than parsing between smaller reads, keeps both sides busy (measured).
    ssize_t got = read_full(opt.fd, buf.data() + tail, to_boundary);
    if (got < 0) {
      error = std::strerror(errno);
      return false;
    }
    if (got == 0) break;
    offset += static_cast<std::uint64_t>(got);
    to_boundary -= static_cast<std::size_t>(got);
    if (opt.progress) opt.progress->at(offset);
    const char* b = buf.data();
    const char* end = b + tail + static_cast<std::size_t>(got);
    // Only the new bytes can hold the first newline: the tail has none.
    const char* nl = static_cast<const char*>(std::memchr(b + tail, '\n', static_cast<std::size_t>(got)));
    while (nl) {
      parser.line(b, nl);
      b = nl + 1;
      nl = static_cast<const char*>(std::memchr(b, '\n', static_cast<std::size_t>(end - b)));
    }
    tail = static_cast<std::size_t>(end - b);
    std::memmove(buf.data(), b, tail);
    if (to_boundary == 0) {
      sink.checkpoint();
      to_boundary = kChunk;
    }
  }
  if (to_boundary != kChunk) sink.checkpoint();   // after the last, shorter read, as Python
  // An unfinished log ends in the NUL bytes of its last window: not a line.
  Bytes rest(buf.data(), tail);
  while (!rest.empty() && rest.back() == '\0') rest.remove_suffix(1);
  bool cut = false;
  for (char c : rest) cut = cut || !is_space(static_cast<unsigned char>(c));
  sink.end(cut, rest.substr(0, kCutText));
  return true;
}

}  // namespace logscan
