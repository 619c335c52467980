#include "compact_source.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <queue>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compact_records.hpp"
#include "line_parser.hpp"
#include "progress.hpp"

namespace logscan {
namespace {

// The log's bytes: mapped when fd is a file, else read whole (a pipe: gzip or stdin), with
// the header's place left empty so that offsets are the file's.
class LogBytes {
 public:
  bool load(const CompactSourceOptions& opt, std::string& error) {
    struct stat st{};
    if (!opt.after_header && ::fstat(opt.fd, &st) == 0 && S_ISREG(st.st_mode)) {
      size_ = static_cast<std::size_t>(st.st_size);
      if (size_ == 0) return true;
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, opt.fd, 0);
      if (m != MAP_FAILED) {
        ::madvise(m, size_, MADV_SEQUENTIAL);
        mapped_ = static_cast<const std::uint8_t*>(m);
        return true;
      }
    }
    copy_.assign(opt.after_header ? opt.header_len : 0, 0);
    if (!opt.after_header && ::lseek(opt.fd, 0, SEEK_SET) < 0) copy_.clear();
    std::uint8_t buf[1 << 16];
    for (;;) {
      ssize_t r = ::read(opt.fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        error = std::strerror(errno);
        return false;
      }
      if (r == 0) break;
      copy_.insert(copy_.end(), buf, buf + r);
    }
    size_ = copy_.size();
    return true;
  }
  ~LogBytes() {
    if (mapped_) ::munmap(const_cast<std::uint8_t*>(mapped_), size_);
  }
  const std::uint8_t* data() const { return mapped_ ? mapped_ : copy_.data(); }
  // Finding the chunks touches a page of each, and the kernel maps the pages around a fault
  // too: all of them. Let go of what is behind `offset` as the search goes (the decoding maps
  // what it reads), or the search alone would hold the whole file.
  void release_searched(std::uint64_t offset, bool last = false) {
    offset = std::min<std::uint64_t>(offset, size_) & ~std::uint64_t{lf::kPage - 1};
    if (mapped_ && offset > searched_ && (last || offset > searched_ + (std::uint64_t{64} << 20))) {
      ::madvise(const_cast<std::uint8_t*>(mapped_) + searched_, offset - searched_, MADV_DONTNEED);
      searched_ = offset;
    }
  }
  // Everything but the chunks being read (`pinned`, sorted) leaves the reader's RSS; a page
  // needed again comes back from the page cache. A stream's chunks before its current one are
  // done with, so memory follows the read front, not the log's size. (A thread that logged
  // early and once more at exit, like the footer's, pins just its one chunk.)
  void release_except(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& pinned) {
    if (!mapped_ || pinned.empty()) return;
    constexpr std::uint64_t kMask = ~std::uint64_t{lf::kPage - 1};
    std::uint64_t from = released_;
    for (auto [lo, hi] : pinned) {
      lo &= kMask;
      if (lo > from) ::madvise(const_cast<std::uint8_t*>(mapped_) + from, lo - from, MADV_DONTNEED);
      from = std::max(from, (hi + lf::kPage - 1) & kMask);
    }
    released_ = std::max(released_, pinned.front().first & kMask);
  }
  std::size_t size() const { return size_; }

 private:
  const std::uint8_t* mapped_ = nullptr;
  std::vector<std::uint8_t> copy_;
  std::size_t size_ = 0;
  std::uint64_t released_ = 0, searched_ = 0;
};


template <class T>
T load_le(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The chunks being read, one per stream that has records left, sorted.
void reading(const std::vector<Stream>& streams, std::vector<std::pair<std::uint64_t, std::uint64_t>>& out) {
  out.clear();
  for (const Stream& s : streams)
    if (!s.done && s.next) out.emplace_back(s.chunks[s.next - 1]->off, s.chunks[s.next - 1]->off + s.chunks[s.next - 1]->size);
  std::sort(out.begin(), out.end());
}

}  // namespace

bool read_compact_log(const CompactSourceOptions& opt, RecordSink& sink, std::string& error) {
  LogBytes bytes;
  if (!bytes.load(opt, error)) return false;
  const std::uint8_t* data = bytes.data();
  const std::uint64_t size = bytes.size();
  // The chunks, by thread in order of each thread's first chunk (compact.py's chunks()).
  std::vector<Chunk> chunks;
  bool cut = size % lf::kPage != 0;
  for (std::uint64_t off = (opt.header_len + lf::kPage) & ~std::uint64_t{lf::kPage - 1};
       off + sizeof(lf::ChunkHeader) <= size;) {
    std::uint32_t magic = load_le<std::uint32_t>(data + off), csize = load_le<std::uint32_t>(data + off + 4);
    if (magic != lf::kChunkMagic || csize < lf::kPage || csize % lf::kPage) {
      off += lf::kPage;
      continue;
    }
    Chunk c{off, csize, load_le<std::uint64_t>(data + off + 16), load_le<std::uint64_t>(data + off + 24),
            load_le<std::uint32_t>(data + off + 8)};
    if (off + csize > size) {
      cut = true;
      c.size = size - off;
    }
    chunks.push_back(c);
    off += csize;
    bytes.release_searched(off);
  }
  bytes.release_searched(size, true);
  std::vector<Stream> streams;
  std::unordered_map<std::uint32_t, std::size_t> by_tid;
  for (const Chunk& c : chunks) {
    auto [it, fresh] = by_tid.emplace(c.tid, streams.size());
    if (fresh) {
      streams.emplace_back();
      streams.back().tid = c.tid;
    }
    streams[it->second].chunks.push_back(&c);
  }

  LineParser parser(opt.layers, sink);
  LineFeed feed(parser, sink);   // records go to the sink one by one, in compact.py's batches
  EventFeed events(opt.layers, sink, feed);
  auto put_line = [&](const std::string& line) { events.line(line); };

  Decoder dec(data);
  using Head = std::pair<std::uint64_t, std::size_t>;  // (time, stream): ties in stream order
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heads;
  for (std::size_t k = 0; k < streams.size(); ++k)
    if (dec.next(streams[k])) heads.push({streams[k].rec.t, k});

  std::map<std::uint64_t, std::string> modules;  // index -> #M line, until written
  std::uint64_t written = 0;
  std::vector<std::pair<std::uint64_t, std::string>> waiting;  // (modules known, #S line)
  // Modules in index order, as far as they have come, up to (not including) index `until`.
  auto write_modules = [&](std::uint64_t until) {
    for (auto it = modules.find(written); written < until && it != modules.end(); it = modules.find(written)) {
      put_line(it->second);
      modules.erase(it);
      ++written;
    }
  };
  std::uint64_t records = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pinned;
  while (!heads.empty()) {
    std::size_t k = heads.top().second;
    heads.pop();
    Rec& rec = streams[k].rec;
    if (rec.kind == Rec::Kind::event) events.event(rec);
    else if (rec.kind == Rec::Kind::module) modules[rec.index] = rec.line;
    else if (rec.kind == Rec::Kind::stack) waiting.emplace_back(rec.index, rec.line);
    else put_line(rec.line);
    if (!waiting.empty()) {
      std::vector<std::pair<std::uint64_t, std::string>> still;
      for (auto& [known, line] : waiting) {
        write_modules(known);
        if (written >= known) put_line(line);
        else still.emplace_back(known, std::move(line));
      }
      waiting = std::move(still);
    }
    if (++records % 65536 == 0) {
      if (opt.progress && streams[k].p) opt.progress->at(static_cast<std::uint64_t>(streams[k].p - data));
      reading(streams, pinned);
      bytes.release_except(pinned);
    }
    if (dec.next(streams[k])) heads.push({rec.t, k});
  }
  for (auto& [known, line] : waiting) {
    write_modules(UINT64_MAX);
    put_line(line);
  }
  for (auto& [index, line] : modules) put_line(line);
  events.finish();
  if (opt.progress) opt.progress->at(size);
  sink.end(cut, cut ? Bytes("(the file ends inside a chunk of records)") : Bytes());
  return true;
}

}  // namespace logscan
