// The packer: events become kinds and references to kinds' blocks (packed_format.hpp). It
// keeps every kind's live blocks in the decoder's order, so that it can name a block's place
// as the decoder will see it, and follows the decoder when it frees another block of the kind
// than the real one.
#include "pack.hpp"

#include <cerrno>
#include <cstring>
#include <iterator>
#include <list>
#include <string>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "packed_format.hpp"

namespace logscan {
namespace {

namespace pk = packed;

struct Kind {
  std::uint64_t op, layer1, size, align, stack1;
  bool operator==(const Kind&) const = default;
};

struct KindHash {
  std::size_t operator()(const Kind& k) const noexcept {
    std::uint64_t h = k.size * 0x9e3779b97f4a7c15ull ^ k.stack1 * 0xc2b2ae3d27d4eb4full;
    h ^= (k.op | k.layer1 << 3) + (k.align << 8);
    return static_cast<std::size_t>(h ^ h >> 29);
  }
};

class Packer final : public PackSink {
 public:
  explicit Packer(int fd) : fd_(fd) { buf_.reserve(kFlush + 64); }

  void event(const Event& e) override {
    if (!plain(e)) return;
    if (e.t_is_number) {
      std::uint64_t step = e.t.value / pk::kTimeStepNs;
      if (step > step_) {   // never back: threads of a text log may be slightly out of order
        put(pk::kTime, step - step_);
        step_ = step;
      }
    }
    ++thread_events_[e.tid.value];
    if (!has_tid_ || e.tid.value != tid_) {
      put(pk::kThread, e.tid.value);
      tid_ = e.tid.value;
      has_tid_ = true;
    }
    switch (e.op) {
      case Op::free:
        put(pk::kFree);
        take(e.ptr, e.tid.value, true);
        break;
      case Op::realloc: {
        std::uint64_t kind = kind_of(e, 3);
        // The old block goes when the call succeeded, or was realloc(p, 0); a failed
        // realloc leaves it (LOG-FORMAT.md, Failures). The decoder applies the same rule.
        bool releases = !is_null(e.ptr) || e.size == 0;
        put(pk::kRealloc, kind);
        bool was_live = take(e.old, e.tid.value, releases);
        std::uint64_t made = is_null(e.ptr) ? pk::kNewNull
                           : is_dash(e.ptr) ? pk::kNewDash
                           : (e.ptr == e.old && was_live) ? pk::kNewInPlace
                           : pk::kNewBlock;
        if (made >= pk::kNewBlock) make(e.ptr.value, kind, e.tid.value);
        put_var(made);
        break;
      }
      default: {
        std::uint64_t kind = kind_of(e, e.op == Op::malloc ? 0 : e.op == Op::calloc ? 1 : 2);
        std::uint64_t made = is_null(e.ptr) ? pk::kNewNull : is_dash(e.ptr) ? pk::kNewDash : pk::kNewBlock;
        if (made == pk::kNewBlock) make(e.ptr.value, kind, e.tid.value);
        put(pk::kAlloc, kind, made);
      }
    }
  }

  void stack(const StackDef& s) override {
    std::string line = "#S " + spell(s.id, false);
    for (const Word& f : s.frames) line += " " + spell(f, true);
    text(pk::kText, line);
  }

  void module(const Module& m) override {
    text(pk::kText, "#M " + spell(m.base, true) + " " + spell(m.lo, true) + " " + spell(m.hi, true) + " " +
                        std::string(m.build_id) + " " + std::string(m.path));
  }

  void footer(Bytes line) override { text(pk::kText, line); }
  void malformed(const Malformed& m) override { text(pk::kText, m.text); }
  void comment() override {}
  void checkpoint() override {}

  void end(bool cut, Bytes cut_text) override {
    if (cut) text(pk::kCut, cut_text);
    flush();
  }

  bool ok(std::string& error) const override {
    error = error_;
    return error_.empty();
  }

 private:
  static constexpr std::size_t kFlush = std::size_t{1} << 16;
  static constexpr std::uint64_t kGone = ~std::uint64_t{0};   // a slot no real block holds

  struct Live {
    std::uint64_t kind;
    std::list<std::uint64_t>::iterator slot;   // its place in order_[kind]
    std::uint64_t tid, made_at;                // the thread that made it, and its event count then
  };

  // A pack names numbers by value: a spelling the proxy never writes ("05" for a thread)
  // would be lost, so such a log is refused rather than changed.
  bool plain(const Event& e) {
    bool spelled = e.tid.canonical() && e.size_fits && e.stack.canonical() &&
                   (e.ptr.canonical() || is_dash(e.ptr)) && (e.old.canonical() || is_dash(e.old));
    if (!spelled && error_.empty()) error_ = "an event spells a number in a way the proxy never writes";
    return error_.empty();
  }

  std::uint64_t kind_of(const Event& e, std::uint64_t op) {
    Kind k{op, e.layer == no_layer ? 0u : static_cast<std::uint64_t>(e.layer) + 1,
           static_cast<std::uint64_t>(e.size), static_cast<std::uint64_t>(e.align),
           e.has_stack ? e.stack.value + 1 : 0};
    auto [it, fresh] = kinds_.try_emplace(k, kinds_.size());
    if (fresh) {
      order_.emplace_back();
      buf_.push_back(static_cast<char>(pk::kKind));
      for (std::uint64_t v : {k.op, k.layer1, k.size, k.align, k.stack1}) var(v);
    }
    return it->second;
  }

  void make(std::uint64_t ptr, std::uint64_t kind, std::uint64_t tid) {
    auto& order = order_[kind];
    order.push_back(ptr);
    Live b{kind, std::prev(order.end()), tid, thread_events_[tid]};
    auto [it, fresh] = live_.try_emplace(ptr, b);
    if (!fresh) {   // a live pointer given out again (a damaged log): its old block stays
      *it->second.slot = kGone;   // in the decoder's order, as nobody's
      it->second = b;
    }
  }

  // Writes how an event names the block it takes (packed_format.hpp); true when it was a
  // live block. A pointer no live block has is "unknown": a double free reads as a free of
  // an unknown pointer once packed.
  bool take(const Word& p, std::uint64_t tid, bool release) {
    if (is_null(p)) return put_var(pk::kOldNull), false;
    if (is_dash(p)) return put_var(pk::kOldDash), false;
    auto it = live_.find(p.value);
    if (it == live_.end()) return put_var(pk::kOldUnknown), false;
    Live& b = it->second;
    auto& order = order_[b.kind];
    auto slot = b.slot;
    bool oldest = slot == order.begin() ||
                  (!recent(b, tid) && !(order.front() != kGone && recent(live_[order.front()], tid)));
    if (oldest) {
      put_var(pk::kOldOldest);
    } else {   // the place from the newest: short for a recent block
      std::uint64_t j = 0;
      for (auto r = std::prev(order.end()); r != slot; --r) ++j;
      put_var(pk::kOldNewest + j);
    }
    put_var(b.kind);
    if (!release) return true;
    live_.erase(it);
    if (!oldest || slot == order.begin()) {
      order.erase(slot);
    } else {   // the decoder frees the oldest: its real block takes the freed one's place
      std::uint64_t q = order.front();
      *slot = q;
      if (q != kGone) live_[q].slot = slot;
      order.pop_front();
    }
    return true;
  }

  // Made by this thread within the temporary window: the reader may count it as temporary,
  // so the decoder must free this very block. One event of slack: the window's edge is the
  // reader's business, and a little more exactness costs nothing.
  bool recent(const Live& b, std::uint64_t tid) const {
    return b.tid == tid && thread_events_.at(tid) - b.made_at <= pk::kTempWindow + 1;
  }

  static std::string spell(const Word& w, bool hex) {
    if (!w.canonical()) return std::string(w.text);
    char b[24];
    int n = 0;
    std::uint64_t v = w.value;
    do {
      b[n++] = "0123456789abcdef"[hex ? v & 15 : v % 10];
      v = hex ? v >> 4 : v / 10;
    } while (v);
    return std::string(std::make_reverse_iterator(b + n), std::make_reverse_iterator(b));
  }

  void put_var(std::uint64_t v) {
    var(v);
    if (buf_.size() >= kFlush) flush();
  }

  template <class... V>
  void put(pk::Tag tag, V... fields) {
    buf_.push_back(static_cast<char>(tag));
    (var(static_cast<std::uint64_t>(fields)), ...);
    if (buf_.size() >= kFlush) flush();
  }

  void text(pk::Tag tag, Bytes line) {
    buf_.push_back(static_cast<char>(tag));
    var(line.size());
    buf_.append(line);
    if (buf_.size() >= kFlush) flush();
  }

  void var(std::uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }

  void flush() {
    std::size_t done = 0;
    while (done < buf_.size() && error_.empty()) {
      ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) error_ = std::string("write: ") + std::strerror(errno);
      else done += static_cast<std::size_t>(n);
    }
    buf_.clear();
  }

  int fd_;
  std::string buf_;
  std::string error_;
  std::uint64_t step_ = 0, tid_ = 0;
  bool has_tid_ = false;
  std::unordered_map<Kind, std::uint64_t, KindHash> kinds_;
  // Every kind's live blocks, oldest first, in the decoder's order; and where each is.
  std::unordered_map<std::uint64_t, std::uint64_t> thread_events_;   // tid -> events so far
  std::vector<std::list<std::uint64_t>> order_;
  std::unordered_map<std::uint64_t, Live> live_;
};

}  // namespace

std::unique_ptr<PackSink> make_pack(int fd) { return std::make_unique<Packer>(fd); }

}  // namespace logscan
