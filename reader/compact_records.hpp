// The records of a compact log (format version 2, preload/compact_format.hpp) as the
// compiled reader decodes them: one thread's chunks in order (Stream), a record at a time
// (Decoder), and what a record is in version 1 terms (its line, or the Event the line parser
// would make of it). compact_source.cpp merges the threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "line_parser.hpp"
#include "preload/compact_format.hpp"
#include "record.hpp"

namespace logscan {

namespace lf = chainalloc::logformat;

struct Chunk {
  std::uint64_t off, size, t_base, ptr_base;
  std::uint32_t tid;
};

// A varint of at most 64 bits (compact.py's var); false past the chunk or beyond 64 bits.
inline bool var(const std::uint8_t*& p, const std::uint8_t* end, std::uint64_t& v) {
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

inline unsigned dec_len(std::uint64_t v) {
  unsigned n = 1;
  while (v >= 10) v /= 10, ++n;
  return n;
}
inline unsigned hex_len(std::uint64_t v) { return v ? (67 - static_cast<unsigned>(__builtin_clzll(v))) / 4 : 1; }

inline void put_dec(std::string& out, std::uint64_t v) {
  char d[20];
  char* e = d + sizeof d;
  char* p = e;
  do *--p = static_cast<char>('0' + v % 10); while (v /= 10);
  out.append(p, static_cast<std::size_t>(e - p));
}
inline void put_hex(std::string& out, std::uint64_t v) {
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

// An event's values, as decoded (from a compact log, or a packed one).
struct EventRec {
  unsigned op;           // lf::Op
  bool failed;           // the call failed: no layer ('-')
  bool has_stack;
  std::uint64_t layer;   // unless failed
  std::uint64_t t, size, align, stack, tid;
  Pointer ptr, old;
};

// One decoded record of a compact log. Events keep their values; the rare meta records their
// text line.
struct Rec : EventRec {
  enum class Kind : std::uint8_t { event, module, stack, text } kind;
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
    r.failed = r.layer == lf::kFailedLayer;
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

// An event's version 1 line, as compact.py writes it.
void event_line(const EventRec& r, std::string& out);

// The length of that line and its newline, without writing it: the batches (and so the
// checkpoints) fall where compact.py's TextView puts them.
std::size_t event_line_len(const EventRec& r);

// The event as the line parser would make it from event_line's text, when that is plain to
// see: canonical numbers, sizes within int64, a valid layer. Anything else goes through the
// text and the parser, so the two paths cannot disagree.
bool direct_event(const EventRec& r, unsigned layers, Event& ev);

// Hands records to the sink in the source's order: events directly when direct_event can,
// else as their line through the parser, and the other records as their lines; counted either
// way in the Python reader's batches (LineFeed). Events wait in a short queue, so that the sink
// can fetch what each will touch (RecordSink::upcoming: the live-block table's slot, a cache
// miss on a log with many live blocks) while the ones before it are counted.
class EventFeed {
 public:
  EventFeed(unsigned layers, RecordSink& sink, LineFeed& feed) : layers_(layers), sink_(sink), feed_(feed) {}
  void event(const EventRec& r) {
    if (r.ptr.kind == Pointer::block) sink_.upcoming(r.ptr.value);
    if (r.op == static_cast<unsigned>(lf::Op::realloc) && r.old.kind == Pointer::block) sink_.upcoming(r.old.value);
    if (queued_ == kAhead) deliver();
    queue_[(first_ + queued_++) % kAhead] = r;
  }
  void line(const std::string& text) {
    flush();
    feed_.item(text);
  }
  void finish() {
    flush();
    feed_.finish();
  }

 private:
  static constexpr unsigned kAhead = 16;
  void deliver() {
    const EventRec& r = queue_[first_];
    first_ = (first_ + 1) % kAhead;
    --queued_;
    if (direct_event(r, layers_, ev_)) {
      sink_.event(ev_);
      return feed_.counted(event_line_len(r));
    }
    event_line(r, line_);
    feed_.item(line_);
  }
  void flush() {
    while (queued_) deliver();
  }

  unsigned layers_;
  RecordSink& sink_;
  LineFeed& feed_;
  EventRec queue_[kAhead];
  unsigned first_ = 0, queued_ = 0;
  Event ev_;
  std::string line_;
};

}  // namespace logscan
