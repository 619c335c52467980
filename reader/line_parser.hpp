// One line of a version 1 log into records (record.hpp), deciding event / stack / module /
// footer / comment / malformed exactly as the Python reader's _scan_events does. The text
// source (text_source.cpp) feeds it the file's lines, the compact source (compact_source.cpp)
// the lines it decodes.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "num.hpp"
#include "pyint.hpp"
#include "record.hpp"

namespace logscan {

// Bytes read per call, and the batch after which the sink is told (a checkpoint): the
// Python reader's CHUNK, so tombstones are forgotten at the same points of the log.
inline constexpr std::size_t kChunk = std::size_t{1} << 22;
inline constexpr std::size_t kCutText = 60;   // bytes of a malformed or cut line kept for the report

// bytes.split()'s whitespace: space, \t, \n, \v, \f, \r. A table: one load per byte.
constexpr auto kSpace = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : {' ', '\t', '\n', '\v', '\f', '\r'}) t[c] = true;
  return t;
}();
constexpr bool is_space(unsigned char c) { return kSpace[c]; }

[[gnu::always_inline]] inline Word word_hex(Bytes s) {
  Word w;
  if (!canonical_hex(s, w.value)) w.text = s;
  return w;
}

[[gnu::always_inline]] inline Word word_dec(Bytes s) {
  Word w;
  if (!canonical_dec(s, w.value)) w.text = s;
  return w;
}

class LineParser {
 public:
  LineParser(unsigned layers, RecordSink& sink) : layers_(layers), sink_(sink) {}

  void line(const char* b, const char* e) {
    if (b != e && *b == '#') return hash_line(Bytes(b, static_cast<std::size_t>(e - b)));
    // Up to 8 words: the most any event uses (a realloc's stack id is the 8th).
    Bytes p[8];
    int n = 0;
    const char* c = b;
    while (n < 8) {
      while (c != e && is_space(static_cast<unsigned char>(*c))) ++c;
      if (c == e) break;
      const char* s = c;
      while (c != e && !is_space(static_cast<unsigned char>(*c))) ++c;
      p[n++] = Bytes(s, static_cast<std::size_t>(c - s));
    }
    if (n == 0) return sink_.comment();   // blank
    Event ev;
    ev.t = word_dec(p[0]);
    ev.t_is_number = ev.t.canonical() || all_digits(p[0]);
    // Built only for a line that fails: most lines do not.
    auto bad = [&](bool counted) {
      Malformed m;
      m.text = Bytes(b, static_cast<std::size_t>(e - b)).substr(0, kCutText);
      m.has_time = ev.t_is_number;
      m.time = ev.t;
      m.has_tid = counted;   // the Python reader had counted the line as the thread's event
      m.tid = ev.tid;
      sink_.malformed(m);
    };
    if (n < 3) return bad(false);
    ev.tid = word_dec(p[1]);
    if (!ev.tid.canonical() && !parse_pyint(p[1], 10).ok) return bad(false);
    Bytes op = p[2];
    if (op.size() != 1) return bad(true);
    int ptr_at, layer_at, stack_at;
    switch (op[0]) {
      case 'f':
        if (n < 4) return bad(true);
        ev.op = Op::free;
        ev.ptr = word_hex(p[3]);
        return sink_.event(ev);
      case 'm':
      case 'c':
        ev.op = op[0] == 'm' ? Op::malloc : Op::calloc;
        if (n < 4 || !size_of(p[3], ev.size, &ev.size_fits) || n < 5) return bad(true);
        ptr_at = 4, layer_at = 5, stack_at = 6;
        break;
      case 'a':
        ev.op = Op::aligned;
        if (n < 4 || !size_of(p[3], ev.align) || n < 5 || !size_of(p[4], ev.size, &ev.size_fits) || n < 6)
          return bad(true);
        ptr_at = 5, layer_at = 6, stack_at = 7;
        break;
      case 'r':
        ev.op = Op::realloc;
        if (n < 5 || !size_of(p[4], ev.size, &ev.size_fits) || n < 6) return bad(true);
        ev.old = word_hex(p[3]);
        ptr_at = 5, layer_at = 6, stack_at = 7;
        break;
      default:
        return bad(true);
    }
    ev.ptr = word_hex(p[ptr_at]);
    // The layer is read only where the Python reader reads it: not for a failed call, nor for
    // the unsampled new side of a realloc (`-`).
    bool served = !is_null(ev.ptr) && !(ev.op == Op::realloc && is_dash(ev.ptr));
    if (served) {
      std::uint64_t layer;
      if (n <= layer_at || !canonical_dec(p[layer_at], layer) || layer >= layers_)
        return bad(true);
      ev.layer = static_cast<int>(layer);
    }
    if (n > stack_at) {
      ev.has_stack = true;
      ev.stack = word_dec(p[stack_at]);
    }
    sink_.event(ev);
  }

 private:
  // A size or alignment as Python's int(); `fits` false when int64 cannot hold it.
  static bool size_of(Bytes s, std::int64_t& out, bool* fits = nullptr) {
    std::uint64_t v;
    if (canonical_dec(s, v) && v <= static_cast<std::uint64_t>(INT64_MAX)) {
      out = static_cast<std::int64_t>(v);
      return true;
    }
    PyInt r = parse_pyint(s, 10);
    out = r.value;
    if (fits) *fits = !r.overflow;
    return r.ok;
  }

  static std::vector<Bytes> split(Bytes s, std::size_t max_split) {
    std::vector<Bytes> out;
    std::size_t i = 0;
    while (true) {
      while (i < s.size() && is_space(static_cast<unsigned char>(s[i]))) ++i;
      if (i == s.size()) break;
      if (out.size() == max_split) {   // the rest, as bytes.split(None, max_split) leaves it
        out.push_back(s.substr(i));
        break;
      }
      std::size_t j = i;
      while (j < s.size() && !is_space(static_cast<unsigned char>(s[j]))) ++j;
      out.push_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }

  void hash_line(Bytes line) {
    if (line.starts_with("# end ") || line == "# end") return sink_.footer(line);
    if (line.starts_with("#S ")) {
      auto p = split(line, SIZE_MAX);
      bool ok = p.size() >= 2 && parse_pyint(p[1], 10).ok;
      frames_.clear();
      for (std::size_t i = 2; ok && i < p.size(); ++i) {
        ok = parse_pyint(p[i], 16).ok;
        frames_.push_back(word_hex(p[i]));
      }
      if (ok) return sink_.stack(StackDef{word_dec(p[1]), frames_});
    } else if (line.starts_with("#M ")) {
      auto p = split(line, 5);
      bool ok = p.size() == 6 && parse_pyint(p[1], 16).ok && parse_pyint(p[2], 16).ok &&
                parse_pyint(p[3], 16).ok;
      for (std::size_t i = 0; ok && i < p[4].size(); ++i)
        ok = static_cast<unsigned char>(p[4][i]) < 0x80;   // the build id decodes as ASCII
      if (ok) return sink_.module(Module{word_hex(p[1]), word_hex(p[2]), word_hex(p[3]), p[4], p[5]});
    }
    sink_.comment();
  }

  unsigned layers_;
  RecordSink& sink_;
  std::vector<Word> frames_;
};

// Decoded text (compact and packed logs) handed to the parser in the batches the Python reader
// scans it in: its LinesView.read returns whole lines up to kChunk bytes, and the sink gets a
// checkpoint after the item that brings the batch there. An item may hold several lines (a
// text record, or a damaged one): parsed one by one, counted as one.
class LineFeed {
 public:
  LineFeed(LineParser& parser, RecordSink& sink) : parser_(parser), sink_(sink) {}

  void item(Bytes text) {
    const char* b = text.data();
    const char* e = b + text.size();
    for (const char* nl; (nl = static_cast<const char*>(std::memchr(b, '\n', static_cast<std::size_t>(e - b))));
         b = nl + 1)
      parser_.line(b, nl);
    parser_.line(b, e);
    counted(text.size() + 1);
  }

  // An item the source handed to the sink itself, `bytes` long as a line with its newline.
  void counted(std::size_t bytes) {
    if ((batch_ += bytes) >= kChunk) {
      sink_.checkpoint();
      batch_ = 0;
    }
  }

  // After the last item: the last, shorter batch.
  void finish() {
    if (batch_) sink_.checkpoint();
  }

 private:
  LineParser& parser_;
  RecordSink& sink_;
  std::size_t batch_ = 0;
};

}  // namespace logscan
