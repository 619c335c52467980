#include "compact_records.hpp"

namespace logscan {
namespace {

void put_pointer(std::string& out, const Pointer& p) {
  if (p.kind == Pointer::block) put_hex(out, p.value);
  else out += p.kind == Pointer::null ? '0' : '-';
}
unsigned pointer_len(const Pointer& p) { return p.kind == Pointer::block ? hex_len(p.value) : 1; }

Word word_of(const Pointer& p) {
  Word w;
  w.value = p.value;
  if (p.kind == Pointer::unsampled) w.text = "-";
  return w;
}

}  // namespace

void event_line(const EventRec& r, std::string& out) {
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
  if (r.failed) out += '-';
  else put_dec(out, r.layer);
  if (r.has_stack) {
    out += ' ';
    put_dec(out, r.stack);
  }
}

std::size_t event_line_len(const EventRec& r) {
  std::size_t n = dec_len(r.t) + 1 + dec_len(r.tid) + 3;
  if (r.op == static_cast<unsigned>(lf::Op::free)) return n + pointer_len(r.ptr) + 1;
  if (r.op == static_cast<unsigned>(lf::Op::aligned)) n += dec_len(r.align) + 1;
  if (r.op == static_cast<unsigned>(lf::Op::realloc)) n += pointer_len(r.old) + 1;
  n += dec_len(r.size) + 1 + pointer_len(r.ptr) + 1 + (r.failed ? 1 : dec_len(r.layer));
  if (r.has_stack) n += 1 + dec_len(r.stack);
  return n + 1;
}


bool direct_event(const EventRec& r, unsigned layers, Event& ev) {
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
    if (r.failed || r.layer >= layers) return false;
    ev.layer = static_cast<int>(r.layer);
  }
  if (r.has_stack) {
    ev.has_stack = true;
    ev.stack.value = r.stack;
  }
  return true;
}

}  // namespace logscan
