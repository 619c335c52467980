// The packer: events become kinds and references to kinds' blocks (packed_format.hpp). It
// keeps every kind's live blocks in the decoder's order, so that it can name a block's place
// as the decoder will see it, and follows the decoder when it frees another block of the kind
// than the real one.
#include "pack.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "packed_format.hpp"
#include "pointer_map.hpp"

namespace logscan {
namespace {

namespace pk = packed;

using pk::Kind;

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
    if (!events_ || e.tid.value != tid_) {
      put(pk::kThread, e.tid.value);
      tid_ = e.tid.value;
      events_ = &thread_events_[tid_];   // stays valid: unordered_map never moves its values
    }
    ++*events_;
    switch (e.op) {
      case Op::free:
        put(pk::kFree);
        take(e.ptr, true);
        break;
      case Op::realloc: {
        std::uint64_t kind = kind_of(e, 3);
        // The old block goes when the call succeeded, or was realloc(p, 0); a failed
        // realloc leaves it (LOG-FORMAT.md, Failures). The decoder applies the same rule.
        bool releases = !is_null(e.ptr) || e.size == 0;
        put(pk::kRealloc, kind);
        bool was_live = take(e.old, releases);
        std::uint64_t made = is_null(e.ptr) ? pk::kNewNull
                           : is_dash(e.ptr) ? pk::kNewDash
                           : (e.ptr == e.old && was_live) ? pk::kNewInPlace
                           : pk::kNewBlock;
        if (made >= pk::kNewBlock) make(e.ptr.value, kind);
        put_var(made);
        break;
      }
      default: {
        std::uint64_t kind = kind_of(e, e.op == Op::malloc ? 0 : e.op == Op::calloc ? 1 : 2);
        std::uint64_t made = is_null(e.ptr) ? pk::kNewNull : is_dash(e.ptr) ? pk::kNewDash : pk::kNewBlock;
        if (made == pk::kNewBlock) make(e.ptr.value, kind);
        put(pk::kAlloc, kind, made);
      }
    }
  }

  void stack(const StackDef& s) override {
    std::string line = "#S " + spelling(s.id, false);
    for (const Word& f : s.frames) line += " " + spelling(f, true);
    text(pk::kText, line);
  }

  void module(const Module& m) override {
    text(pk::kText, "#M " + spelling(m.base, true) + " " + spelling(m.lo, true) + " " + spelling(m.hi, true) + " " +
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
  static constexpr std::uint64_t kGone = ~std::uint64_t{0};   // a node no real block holds
  static constexpr std::uint32_t kNil = ~std::uint32_t{0};

  struct Node {
    std::uint64_t ptr, tid;          // the block, the thread that made it (kGone: nobody's)
    const std::uint64_t* events;     // that thread's event count, and its value then
    std::uint64_t made_at;
    std::uint32_t prev, next, kind;  // prev: the next older of its kind; next: newer (or free)
  };
  struct Order {
    std::uint32_t oldest = kNil, newest = kNil;
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

  void make(std::uint64_t ptr, std::uint64_t kind) {
    std::uint32_t n = new_node();
    nodes_[n] = Node{ptr, tid_, events_, *events_, kNil, kNil, static_cast<std::uint32_t>(kind)};
    link_newest(n);
    std::uint32_t& at = live_.slot(ptr);
    if (at != PointerMap::kNone) {   // a live pointer given out again (a damaged log): its old block stays
      nodes_[at].ptr = kGone;   // in the decoder's order, as nobody's
      nodes_[at].tid = kGone;
    }
    at = n;
  }

  // Writes how an event names the block it takes (packed_format.hpp); true when it was a
  // live block. A pointer no live block has is "unknown": a double free reads as a free of
  // an unknown pointer once packed.
  bool take(const Word& p, bool release) {
    if (is_null(p)) return put_var(pk::kOldNull), false;
    if (is_dash(p)) return put_var(pk::kOldDash), false;
    std::uint32_t* at = live_.find(p.value);
    if (!at) return put_var(pk::kOldUnknown), false;
    std::uint32_t n = *at;
    Order& order = order_[nodes_[n].kind];
    std::uint32_t first = order.oldest;
    bool oldest = n == first || (done(nodes_[n]) && done(nodes_[first]));
    if (oldest) {
      put_var(pk::kOldOldest);
    } else {   // the place from the newest: short for a recent block
      std::uint64_t j = 0;
      for (std::uint32_t r = order.newest; r != n; r = nodes_[r].prev) ++j;
      put_var(pk::kOldNewest + j);
    }
    put_var(nodes_[n].kind);
    if (!release) return true;
    live_.erase(p.value);
    if (!oldest || n == first) {
      unlink(n);
    } else {   // the decoder frees the oldest: its real block takes the freed one's place
      Node& q = nodes_[first];
      nodes_[n].ptr = q.ptr;
      nodes_[n].tid = q.tid;
      nodes_[n].events = q.events;
      nodes_[n].made_at = q.made_at;
      if (q.ptr != kGone) *live_.find(q.ptr) = n;
      unlink(first);
    }
    return true;
  }

  // A block whose thread has gone past the temporary window since it made it: the reader
  // will count it temporary at no free, whoever frees it (parse.py: freed by its thread within
  // TEMP_WINDOW of that thread's events). Only such blocks may trade places: the decoder frees
  // the oldest instead of the real one, and the real one goes on under the oldest's
  // allocation, which the reader judges later. One event of slack: the window's edge is the
  // reader's business, and a little more exactness costs nothing.
  static bool done(const Node& b) { return b.tid == kGone || *b.events - b.made_at > pk::kTempWindow + 1; }

  std::uint32_t new_node() {
    if (free_node_ == kNil) {
      nodes_.emplace_back();
      return static_cast<std::uint32_t>(nodes_.size() - 1);
    }
    std::uint32_t n = free_node_;
    free_node_ = nodes_[n].next;
    return n;
  }

  void link_newest(std::uint32_t n) {
    Order& o = order_[nodes_[n].kind];
    nodes_[n].prev = o.newest;
    if (o.newest != kNil) nodes_[o.newest].next = n;
    else o.oldest = n;
    o.newest = n;
  }

  void unlink(std::uint32_t n) {
    Node& b = nodes_[n];
    Order& o = order_[b.kind];
    (b.prev != kNil ? nodes_[b.prev].next : o.oldest) = b.next;
    (b.next != kNil ? nodes_[b.next].prev : o.newest) = b.prev;
    b.next = free_node_;
    free_node_ = n;
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
  std::unordered_map<Kind, std::uint64_t, KindHash> kinds_;
  // Every kind's live blocks in the decoder's order (a list through nodes_, oldest first),
  // and the node of each live pointer.
  std::vector<Node> nodes_;
  std::uint32_t free_node_ = kNil;
  std::vector<Order> order_;
  PointerMap live_;
  std::unordered_map<std::uint64_t, std::uint64_t> thread_events_;   // tid -> events so far
  std::uint64_t* events_ = nullptr;                                  // the current thread's
};

}  // namespace

std::unique_ptr<PackSink> make_pack(int fd) { return std::make_unique<Packer>(fd); }

}  // namespace logscan
