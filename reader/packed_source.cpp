// The packed decoder: every block gets a made-up address (16-byte aligned, reused newest
// first, as an allocator would) and each kind keeps its live blocks in order, so that an event
// takes the block at the place the packer names (packed_format.hpp). Events go to the sink as
// the compact source's do (EventFeed: records, or their v1 line where only the parser can
// decide), other records as their lines.
#include "packed_source.hpp"

#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <unistd.h>
#include <vector>

#include "compact_records.hpp"
#include "line_parser.hpp"
#include "packed_format.hpp"
#include "progress.hpp"

namespace logscan {
namespace {

namespace pk = packed;

struct Kind : pk::Kind {
  std::deque<std::uint64_t> live;   // made-up addresses, oldest first
};

class Input {
 public:
  Input(int fd, Progress* progress) : fd_(fd), progress_(progress) {}

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  bool byte(std::uint8_t& out) {
    if (!fill(1)) return false;
    out = static_cast<std::uint8_t>(buf_[pos_++]);
    return true;
  }
  bool var(std::uint64_t& out) {
    out = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t b;
      if (!byte(b)) return false;
      out |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;   // more than 10 bytes: not a varint the packer writes
  }
  bool bytes(std::size_t n, std::string& out) {
    if (!fill(n)) return false;
    out.assign(buf_.data() + pos_, n);
    pos_ += n;
    return true;
  }

 private:
  // Grows by what was read, never by what a length promises: a damaged one may say 2^60.
  bool fill(std::size_t n) {
    while (buf_.size() - pos_ < n) {
      buf_.erase(0, pos_);
      pos_ = 0;
      std::size_t have = buf_.size();
      buf_.resize(have + (std::size_t{1} << 16));
      ssize_t got;
      do got = ::read(fd_, buf_.data() + have, buf_.size() - have);
      while (got < 0 && errno == EINTR);
      buf_.resize(have + static_cast<std::size_t>(got > 0 ? got : 0));
      if (got < 0) error_ = std::strerror(errno);
      if (got <= 0) return false;
      offset_ += static_cast<std::uint64_t>(got);
      if (progress_) progress_->at(offset_);
    }
    return true;
  }

  int fd_;
  Progress* progress_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::uint64_t offset_ = 0;
  std::string error_;
};

class PackedDecoder {
 public:
  PackedDecoder(unsigned layers, RecordSink& sink)
      : parser_(layers, sink), feed_(parser_, sink), events_(layers, sink, feed_), sink_(sink) {}

  // One record; false at the end of the body or at a record it cannot read (`bad_`).
  bool record(Input& in) {
    std::uint8_t tag;
    if (!in.byte(tag)) return false;
    std::uint64_t a = 0, b = 0, c = 0;
    switch (tag) {
      case pk::kText:
      case pk::kCut: {
        std::string s;
        if (!in.var(a) || !in.bytes(a, s)) return bad();
        if (tag == pk::kCut) cut_ = s;
        else emit(s);
        return true;
      }
      case pk::kTime:
        if (!in.var(a)) return bad();
        step_ += a;
        return true;
      case pk::kThread:
        return in.var(tid_) || bad();
      case pk::kKind: {
        Kind k{};
        if (!in.var(k.op) || !in.var(k.layer1) || !in.var(k.size) || !in.var(k.align) || !in.var(k.stack1) ||
            k.op > 3)
          return bad();
        kinds_.push_back(std::move(k));
        return true;
      }
      case pk::kAlloc: {
        if (!in.var(a) || !in.var(b) || a >= kinds_.size() || kinds_[a].op > 2 || b > pk::kNewBlock) return bad();
        EventRec& r = event(kinds_[a]);
        r.ptr = made(kinds_[a], b, 0);
        return put(r);
      }
      case pk::kFree: {
        OldRef ref;
        EventRec& r = event(nullptr);
        std::uint64_t addr = 0;
        if (!ref.read(in) || !take(ref, true, r.ptr, addr)) return bad();
        if (addr) free_.push_back(addr);
        return put(r);
      }
      case pk::kRealloc: {
        OldRef ref;
        if (!in.var(a) || !ref.read(in) || !in.var(c) || a >= kinds_.size() || kinds_[a].op != 3 ||
            c > pk::kNewInPlace)
          return bad();
        Kind& k = kinds_[a];
        EventRec& r = event(k);
        std::uint64_t addr = 0;
        bool release = c != pk::kNewNull || k.size == 0;
        if (!take(ref, release, r.old, addr)) return bad();
        if (c == pk::kNewInPlace && !(addr && release)) return bad();
        r.ptr = made(k, c, addr);
        // The old address is free only after the new block has one: a moved block never
        // gets its old address back (that would read as in place).
        if (addr && release && c != pk::kNewInPlace) free_.push_back(addr);
        return put(r);
      }
      default:
        return bad();
    }
  }

  void finish(bool bad_end) {
    events_.finish();
    if (bad_end && cut_.empty()) cut_ = "(the packed log ends inside a record)";
    sink_.end(!cut_.empty(), Bytes(cut_).substr(0, kCutText));
  }

  bool damaged() const { return bad_; }

 private:
  bool bad() {
    bad_ = true;
    return false;
  }

  struct OldRef {
    std::uint64_t code = 0, kind = 0;
    bool read(Input& in) { return in.var(code) && (code < pk::kOldOldest || in.var(kind)); }
  };

  // The address an event makes: a free one for a new block, the old block's in place.
  Pointer made(Kind& k, std::uint64_t code, std::uint64_t in_place) {
    if (code == pk::kNewNull) return {Pointer::null, 0};
    if (code == pk::kNewDash) return {Pointer::unsampled, 0};
    std::uint64_t addr = in_place;
    if (code != pk::kNewInPlace) {
      if (free_.empty()) {
        addr = ++serial_ << 4;
      } else {
        addr = free_.back();
        free_.pop_back();
      }
    }
    k.live.push_back(addr);
    return {Pointer::block, addr};
  }

  // The address of the block an event takes (`addr`, 0 when it names none); `release` drops
  // it from its kind's live blocks, and the caller decides when the address is free again.
  bool take(const OldRef& ref, bool release, Pointer& out, std::uint64_t& addr) {
    if (ref.code == pk::kOldNull) return out = {Pointer::null, 0}, true;
    if (ref.code == pk::kOldDash) return out = {Pointer::unsampled, 0}, true;
    if (ref.code == pk::kOldUnknown) {   // an address no block of this log has: above them all
      out = {Pointer::block, (std::uint64_t{1} << 60) + (++unknown_ << 4)};
      return true;
    }
    if (ref.kind >= kinds_.size()) return false;
    auto& live = kinds_[ref.kind].live;
    std::uint64_t j = ref.code - pk::kOldNewest;   // the place from the newest
    if (live.empty() || (ref.code != pk::kOldOldest && j >= live.size())) return false;
    auto at = ref.code == pk::kOldOldest ? live.begin() : live.end() - 1 - static_cast<std::ptrdiff_t>(j);
    addr = *at;
    if (release) live.erase(at);
    out = {Pointer::block, addr};
    return true;
  }

  // The event record for kind k (nullptr: a free), its pointers still to fill in.
  EventRec& event(const Kind* k) {
    EventRec& r = rec_;
    r.t = step_ * pk::kTimeStepNs;
    r.tid = tid_;
    r.op = k ? static_cast<unsigned>(lf::Op::malloc) + static_cast<unsigned>(k->op)   // m c a r, in order
             : static_cast<unsigned>(lf::Op::free);
    r.failed = k && !k->layer1;
    r.layer = k && k->layer1 ? k->layer1 - 1 : 0;
    r.has_stack = k && k->stack1;
    r.stack = r.has_stack ? k->stack1 - 1 : 0;
    r.size = k ? k->size : 0;
    r.align = k ? k->align : 0;
    return r;
  }
  EventRec& event(const Kind& k) { return event(&k); }

  bool put(const EventRec& r) {
    events_.event(r);
    return true;
  }

  // In packed.py's batches; a damaged text record may hold a newline (LineFeed).
  void emit(const std::string& s) { events_.line(s); }

  LineParser parser_;
  LineFeed feed_;
  EventFeed events_;
  RecordSink& sink_;
  EventRec rec_{};
  std::vector<Kind> kinds_;
  std::vector<std::uint64_t> free_;   // addresses of freed blocks, newest last
  std::uint64_t step_ = 0, tid_ = 0, serial_ = 0, unknown_ = 0;
  std::string cut_;
  bool bad_ = false;
};

}  // namespace

bool read_packed_log(int fd, unsigned layers, Progress* progress, RecordSink& sink, std::string& error) {
  Input in(fd, progress);
  PackedDecoder d(layers, sink);
  while (d.record(in)) {
  }
  if (in.failed()) {
    error = in.error();
    return false;
  }
  d.finish(d.damaged());
  return true;
}

}  // namespace logscan
