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

#include "line_parser.hpp"
#include "preload/compact_format.hpp"
#include "progress.hpp"

namespace logscan {
namespace {

namespace lf = chainalloc::logformat;

struct Chunk {
  std::uint64_t off, size, t_base, ptr_base;
  std::uint32_t tid;
};

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

// A varint of at most 64 bits (compact.py's var); false past the chunk or beyond 64 bits.
bool var(const std::uint8_t*& p, const std::uint8_t* end, std::uint64_t& v) {
  v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (p >= end) return false;
    std::uint8_t b = *p++;
    if (shift == 63 && b > 1) return false;
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) return true;
  }
  return false;
}

unsigned dec_len(std::uint64_t v) {
  unsigned n = 1;
  while (v >= 10) v /= 10, ++n;
  return n;
}
unsigned hex_len(std::uint64_t v) { return v ? (67 - static_cast<unsigned>(__builtin_clzll(v))) / 4 : 1; }

void put_dec(std::string& out, std::uint64_t v) {
  char d[20];
  char* e = d + sizeof d;
  char* p = e;
  do *--p = static_cast<char>('0' + v % 10); while (v /= 10);
  out.append(p, static_cast<std::size_t>(e - p));
}
void put_hex(std::string& out, std::uint64_t v) {
  char d[16];
  char* e = d + sizeof d;
  char* p = e;
  do *--p = "0123456789abcdef"[v & 15]; while (v >>= 4);
  out.append(p, static_cast<std::size_t>(e - p));
}

// A pointer as decoded: a block, null ('0') or outside the sample ('-').
struct Pointer {
  enum Kind : std::uint8_t { block, null, unsampled } kind = null;
  std::uint64_t value = 0;
};

// One decoded record. Events keep their values; the rare meta records their text line.
struct Rec {
  enum class Kind : std::uint8_t { event, module, stack, text } kind;
  unsigned op, layer;
  bool has_stack;
  std::uint64_t t, size, align, stack;
  std::uint32_t tid;
  Pointer ptr, old;
  std::uint64_t index;  // a module's index, or a stack's count of known modules
  std::string line;     // a meta record's line
};

// One thread's records, chunk after chunk.
struct Stream {
  std::vector<const Chunk*> chunks;
  std::size_t next = 0;
  const std::uint8_t* p = nullptr;
  const std::uint8_t* end = nullptr;
  std::uint64_t t = 0, prev = 0;
  std::uint32_t tid = 0;
  bool done = false;
  Rec rec;  // the record at the head of this stream
};

// Reads a stream's records. Everything compact.py's _records does, in the same order, with the
// same notion of damage: a record that runs past its chunk, a varint beyond 64 bits, a code
// or kind no writer makes ends that chunk.
class Decoder {
 public:
  explicit Decoder(const std::uint8_t* base) : base_(base) {}

  // The stream's next record into s.rec; false when the stream has none left.
  bool next(Stream& s) {
    for (;;) {
      if (!s.p || s.p >= s.end || *s.p == 0) {
        if (s.next == s.chunks.size()) return !(s.done = true);
        const Chunk& c = *s.chunks[s.next++];
        s.p = base_ + c.off + sizeof(lf::ChunkHeader);
        s.end = base_ + c.off + c.size;
        s.t = c.t_base;
        s.prev = c.ptr_base;
        continue;
      }
      if (decode(s)) return true;
      s.p = s.end;
    }
  }

 private:
  bool pointer(Stream& s, Pointer& out) {
    std::uint64_t c;
    if (!var(s.p, s.end, c)) return false;
    if (c == lf::kNullCode) return out = {Pointer::null, 0}, true;
    if (c == lf::kUnsampledCode) return out = {Pointer::unsampled, 0}, true;
    if ((c & 3) > 1) return false;
    std::int64_t d = lf::unzigzag(c >> 2);
    s.prev += static_cast<std::uint64_t>((c & 3) == 0 ? d * 16 : d);
    out = {Pointer::block, s.prev};
    return true;
  }
  bool blob(Stream& s, const std::uint8_t*& b, std::uint64_t& n) {
    if (!var(s.p, s.end, n) || n > static_cast<std::uint64_t>(s.end - s.p)) return false;
    b = s.p;
    s.p += n;
    return true;
  }

  bool decode(Stream& s) {
    Rec& r = s.rec;
    std::uint8_t tag = *s.p++;
    std::uint64_t dt;
    if (!var(s.p, s.end, dt)) return false;
    s.t += dt;
    r.t = s.t;
    r.tid = s.tid;
    r.op = tag & 7;
    if (r.op == static_cast<unsigned>(lf::Op::meta)) return meta(s);
    if (r.op == 0 || r.op == 7) return false;
    r.kind = Rec::Kind::event;
    r.layer = (tag >> 3) & 15;
    r.has_stack = false;
    switch (static_cast<lf::Op>(r.op)) {
      case lf::Op::free:
        return pointer(s, r.ptr);  // a free carries no stack, whatever its tag says
      case lf::Op::aligned:
        if (!var(s.p, s.end, r.align) || !var(s.p, s.end, r.size) || !pointer(s, r.ptr)) return false;
        break;
      case lf::Op::realloc:
        if (!pointer(s, r.old) || !var(s.p, s.end, r.size) || !pointer(s, r.ptr)) return false;
        break;
      default:
        if (!var(s.p, s.end, r.size) || !pointer(s, r.ptr)) return false;
    }
    r.has_stack = tag & lf::kHasStack;
    return !r.has_stack || var(s.p, s.end, r.stack);
  }

  bool meta(Stream& s) {
    Rec& r = s.rec;
    std::string& line = r.line;
    std::uint64_t k;
    if (!var(s.p, s.end, k)) return false;
    if (k == static_cast<std::uint64_t>(lf::Meta::text)) {
      const std::uint8_t* b;
      std::uint64_t n;
      if (!blob(s, b, n)) return false;
      line.assign(reinterpret_cast<const char*>(b), n);
      r.kind = Rec::Kind::text;
      return true;
    }
    if (k == static_cast<std::uint64_t>(lf::Meta::module)) {
      std::uint64_t base, lo, hi;
      const std::uint8_t *id, *path;
      std::uint64_t id_n, path_n;
      if (!var(s.p, s.end, r.index) || !var(s.p, s.end, base) || !var(s.p, s.end, lo) ||
          !var(s.p, s.end, hi) || !blob(s, id, id_n) || !blob(s, path, path_n))
        return false;
      line = "#M ";
      put_hex(line, base);
      line += ' ';
      put_hex(line, lo);
      line += ' ';
      put_hex(line, hi);
      line += ' ';
      if (!id_n) line += '-';
      for (std::uint64_t i = 0; i < id_n; ++i) {
        line += "0123456789abcdef"[id[i] >> 4];
        line += "0123456789abcdef"[id[i] & 15];
      }
      line += ' ';
      for (std::uint64_t i = 0; i < path_n; ++i) {  // as compact.py's _pct
        std::uint8_t c = path[i];
        if (c > 0x20 && c < 0x7f && c != '%' && c != ',') {
          line += static_cast<char>(c);
        } else {
          line += '%';
          line += "0123456789ABCDEF"[c >> 4];
          line += "0123456789ABCDEF"[c & 15];
        }
      }
      r.kind = Rec::Kind::module;
      return true;
    }
    if (k == static_cast<std::uint64_t>(lf::Meta::stack)) {
      std::uint64_t id, depth;
      if (!var(s.p, s.end, id) || !var(s.p, s.end, r.index) || !var(s.p, s.end, depth)) return false;
      line = "#S ";
      put_dec(line, id);
      line += ' ';
      std::uint64_t f = 0;
      for (std::uint64_t i = 0; i < depth; ++i) {
        std::uint64_t z;
        if (!var(s.p, s.end, z)) return false;
        f += static_cast<std::uint64_t>(lf::unzigzag(z));
        if (i) line += ' ';
        put_hex(line, f);
      }
      r.kind = Rec::Kind::stack;
      return true;
    }
    return false;
  }

  const std::uint8_t* base_;
};

void put_pointer(std::string& out, const Pointer& p) {
  if (p.kind == Pointer::block) put_hex(out, p.value);
  else out += p.kind == Pointer::null ? '0' : '-';
}
unsigned pointer_len(const Pointer& p) { return p.kind == Pointer::block ? hex_len(p.value) : 1; }

// An event's version 1 line, as compact.py writes it.
void event_line(const Rec& r, std::string& out) {
  out.clear();
  put_dec(out, r.t);
  out += ' ';
  put_dec(out, r.tid);
  out += ' ';
  out += "?mcarf"[r.op];
  out += ' ';
  if (r.op == static_cast<unsigned>(lf::Op::free)) return put_pointer(out, r.ptr);
  if (r.op == static_cast<unsigned>(lf::Op::aligned)) {
    put_dec(out, r.align);
    out += ' ';
  }
  if (r.op == static_cast<unsigned>(lf::Op::realloc)) {
    put_pointer(out, r.old);
    out += ' ';
  }
  put_dec(out, r.size);
  out += ' ';
  put_pointer(out, r.ptr);
  out += ' ';
  if (r.layer == lf::kFailedLayer) out += '-';
  else put_dec(out, r.layer);
  if (r.has_stack) {
    out += ' ';
    put_dec(out, r.stack);
  }
}

// The length of that line and its newline, without writing it: the batches (and so the
// checkpoints) fall where compact.py's TextView puts them.
std::size_t event_line_len(const Rec& r) {
  std::size_t n = dec_len(r.t) + 1 + dec_len(r.tid) + 3;
  if (r.op == static_cast<unsigned>(lf::Op::free)) return n + pointer_len(r.ptr) + 1;
  if (r.op == static_cast<unsigned>(lf::Op::aligned)) n += dec_len(r.align) + 1;
  if (r.op == static_cast<unsigned>(lf::Op::realloc)) n += pointer_len(r.old) + 1;
  n += dec_len(r.size) + 1 + pointer_len(r.ptr) + 1 + (r.layer == lf::kFailedLayer ? 1 : dec_len(r.layer));
  if (r.has_stack) n += 1 + dec_len(r.stack);
  return n + 1;
}

// The chunks being read, one per stream that has records left, sorted.
void reading(const std::vector<Stream>& streams, std::vector<std::pair<std::uint64_t, std::uint64_t>>& out) {
  out.clear();
  for (const Stream& s : streams)
    if (!s.done && s.next) out.emplace_back(s.chunks[s.next - 1]->off, s.chunks[s.next - 1]->off + s.chunks[s.next - 1]->size);
  std::sort(out.begin(), out.end());
}

Word word_of(const Pointer& p) {
  Word w;
  w.value = p.value;
  if (p.kind == Pointer::unsampled) w.text = "-";
  return w;
}

// The event as the line parser would make it from event_line's text, when that is plain to
// see: canonical numbers, sizes within int64, a valid layer. Anything else goes through the
// text and the parser, so the two paths cannot disagree.
bool direct_event(const Rec& r, unsigned layers, Event& ev) {
  constexpr auto kMax = static_cast<std::uint64_t>(INT64_MAX);
  if (r.size > kMax || r.align > kMax) return false;
  ev = Event{};
  ev.op = r.op == 1 ? Op::malloc : r.op == 2 ? Op::calloc : r.op == 3 ? Op::aligned : r.op == 4 ? Op::realloc : Op::free;
  ev.t.value = r.t;
  ev.t_is_number = true;
  ev.tid.value = r.tid;
  ev.ptr = word_of(r.ptr);
  if (ev.op == Op::free) return true;
  ev.size = static_cast<std::int64_t>(r.size);
  ev.align = static_cast<std::int64_t>(r.align);
  if (ev.op == Op::realloc) ev.old = word_of(r.old);
  bool served = !is_null(ev.ptr) && !(ev.op == Op::realloc && is_dash(ev.ptr));  // as LineParser decides
  if (served) {
    if (r.layer == lf::kFailedLayer || r.layer >= layers) return false;
    ev.layer = static_cast<int>(r.layer);
  }
  if (r.has_stack) {
    ev.has_stack = true;
    ev.stack.value = r.stack;
  }
  return true;
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
  // Records go to the sink one by one; the checkpoint falls after the line that brings the
  // batch to kChunk bytes of text, as compact.py's TextView.read hands the scan its batches.
  std::size_t batch = 0;
  auto counted = [&](std::size_t bytes) {
    if ((batch += bytes) >= kChunk) {
      sink.checkpoint();
      batch = 0;
    }
  };
  // A text record may hold several lines: parsed one by one, counted as one item.
  auto put_line = [&](const std::string& line) {
    const char* b = line.data();
    const char* e = b + line.size();
    for (const char* nl; (nl = static_cast<const char*>(std::memchr(b, '\n', static_cast<std::size_t>(e - b))));) {
      parser.line(b, nl);
      b = nl + 1;
    }
    parser.line(b, e);
    counted(line.size() + 1);
  };
  std::string scratch;
  Event ev;
  auto put_event = [&](const Rec& r) {
    if (direct_event(r, opt.layers, ev)) {
      sink.event(ev);
      return counted(event_line_len(r));
    }
    event_line(r, scratch);
    put_line(scratch);
  };

  Decoder dec(data);
  using Head = std::pair<std::uint64_t, std::size_t>;  // (time, stream): ties in stream order
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heads;
  for (std::size_t k = 0; k < streams.size(); ++k)
    if (dec.next(streams[k])) heads.push({streams[k].rec.t, k});

  std::map<std::uint64_t, std::string> modules;  // index -> #M line, until written
  std::uint64_t written = 0;
  std::vector<std::pair<std::uint64_t, std::string>> waiting;  // (modules known, #S line)
  std::uint64_t records = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pinned;
  while (!heads.empty()) {
    std::size_t k = heads.top().second;
    heads.pop();
    Rec& rec = streams[k].rec;
    if (rec.kind == Rec::Kind::event) put_event(rec);
    else if (rec.kind == Rec::Kind::module) modules[rec.index] = rec.line;
    else if (rec.kind == Rec::Kind::stack) waiting.emplace_back(rec.index, rec.line);
    else put_line(rec.line);
    if (!waiting.empty()) {
      std::vector<std::pair<std::uint64_t, std::string>> still;
      for (auto& [known, line] : waiting) {
        for (auto it = modules.find(written); written < known && it != modules.end(); it = modules.find(written)) {
          put_line(it->second);
          modules.erase(it);
          ++written;
        }
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
    for (auto it = modules.find(written); it != modules.end(); it = modules.find(written)) {
      put_line(it->second);
      modules.erase(it);
      ++written;
    }
    put_line(line);
  }
  for (auto& [index, line] : modules) put_line(line);
  if (batch) sink.checkpoint();
  if (opt.progress) opt.progress->at(size);
  sink.end(cut, cut ? Bytes("(the file ends inside a chunk of records)") : Bytes());
  return true;
}

}  // namespace logscan
