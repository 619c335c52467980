// What a log source hands to the aggregation (scan.hpp): one record per line of a v1 text log,
// or per entry of another format. The aggregation sees values, never the text they came from,
// except where the Python reader keys or reports by the text itself (pointers, thread ids,
// stack ids, times that are not plain numbers): there the record carries the text as written.
#pragma once

#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>

namespace logscan {

using Bytes = std::string_view;   // raw bytes of the log; not necessarily UTF-8

// A number the log writes in one canonical spelling (hex for pointers and frames, decimal for
// thread ids, stack ids and times). `text` is empty when the spelling was canonical, so the
// value alone says it; otherwise it is the spelling itself, which the Python reader keys by
// ("05" and "5" are two threads there), and `value` is not used as a key.
struct Word {
  std::uint64_t value = 0;
  Bytes text;
  bool canonical() const { return text.empty(); }
  bool operator==(const Word&) const = default;
};

// The word as a log writes it: its own spelling, or the canonical one of its value.
inline std::string spelling(const Word& w, bool hex) {
  if (!w.canonical()) return std::string(w.text);
  char buf[24];
  int n = 0;
  std::uint64_t v = w.value;
  do {
    buf[n++] = "0123456789abcdef"[hex ? v & 15 : v % 10];
    v = hex ? v >> 4 : v / 10;
  } while (v);
  return std::string(std::make_reverse_iterator(buf + n), std::make_reverse_iterator(buf));
}

// Pointers: canonical "0" is no block (a failed call); "-" is the unsampled side of a realloc.
inline bool is_null(const Word& p) { return p.canonical() && p.value == 0; }
inline bool is_dash(const Word& p) { return p.text == "-"; }

enum class Op : std::uint8_t { malloc, calloc, aligned, realloc, free };

inline constexpr int no_layer = -1;   // a failed call, or a realloc whose new side is unsampled

struct Event {
  Op op;
  Word t;                  // t_ns (times are not checked: any text is kept)
  bool t_is_number;        // t is all digits (Python's bytes.isdigit()): a time the reader uses
  Word tid;
  std::int64_t size = 0;   // requested bytes
  bool size_fits = true;   // false: the log's size is beyond int64 (size is clamped)
  std::int64_t align = 0;  // aligned only
  Word ptr;                // the block (free: the block freed; realloc: the new block)
  Word old;                // realloc only: the old block
  int layer = no_layer;    // index into the header's layers, or no_layer
  bool has_stack = false;
  Word stack;              // the stack id, when has_stack
};

struct StackDef {
  Word id;
  std::span<const Word> frames;   // innermost first
};

struct Module {
  Word base, lo, hi;
  Bytes build_id;      // hex, or "-" when the module has none
  Bytes path;          // percent-encoded as in the log
};

// A line that is not an event nor one of the lines above. When it got as far as naming a
// valid thread, the Python reader has already counted it as one of that thread's events.
struct Malformed {
  Bytes text;          // the line's first 60 bytes
  bool has_tid = false;
  Word tid;
  bool has_time = false;   // the line's first word is a number (a time, for runtime and plot)
  Word time;
};

// Everything the aggregation is told, in log order.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void event(const Event& e) = 0;
  // An event to come soon touches the block at `ptr` (canonical): the sink may fetch what it
  // needs for it. A hint, nothing more.
  virtual void upcoming(std::uint64_t /*ptr*/) {}
  virtual void stack(const StackDef& s) = 0;
  virtual void module(const Module& m) = 0;
  virtual void footer(Bytes text) = 0;        // the footer as its v1 text line, `# end k=v ...`
  virtual void malformed(const Malformed& m) = 0;
  virtual void comment() = 0;                 // a comment or blank line: no event, one line
  // A point where the source has handed over a batch of records (the text source: every
  // 4 MiB read, as the Python reader): the aggregation may forget old freed pointers there.
  virtual void checkpoint() = 0;
  // End of the log. `cut` when it ended in a partial line (NUL padding excepted), whose first
  // 60 bytes are `cut_text`.
  virtual void end(bool cut, Bytes cut_text) = 0;
};

}  // namespace logscan
