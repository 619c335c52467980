#include "scan.hpp"

#include <iterator>
#include <string>
#include <type_traits>

namespace logscan {

namespace {
// The Python reader's constants (parse.py).
constexpr std::int64_t kTempWindow = 8;          // TEMP_WINDOW
constexpr std::size_t kTimelinePoints = 3000;    // TIMELINE_POINTS
constexpr double kTombstoneSlack = 1 << 18;      // TOMBSTONE_SLACK
constexpr double kPeakSnapshotStep = 1.01;       // PEAK_SNAPSHOT_STEP
constexpr std::size_t kAnomalies = 20;
enum { kMalloc, kCalloc, kRealloc, kAligned, kFree };

}  // namespace

TimeVal TimeVal::of(const Word& digits) {
  TimeVal t;
  if (digits.canonical()) {
    t.v = digits.value;
    return t;
  }
  Bytes s = digits.text;
  while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);
  if (s.size() > 19) {
    t.big = std::string(s);
    return t;
  }
  for (char c : s) t.v = t.v * 10 + static_cast<unsigned>(c - '0');
  return t;
}

std::unique_ptr<ScanSink> make_scan(const ScanConfig& cfg) {
  if (cfg.weighted) return std::make_unique<Scan<Flt>>(cfg);
  return std::make_unique<Scan<Int>>(cfg);
}

template <class N>
Scan<N>::Scan(const ScanConfig& cfg)
    : cfg_(cfg), mean_(static_cast<double>(cfg.sample)), layers_(cfg.layers),
      step_(cfg.timeline ? 1 : std::int64_t{1} << 62), step_left_(step_) {
  // realloc's unsampled side (`-`): by hash the line was one call; by bytes a call is
  // counted through its new block only.
  dash_w_ = N(std::is_same_v<N, Flt> ? 0 : 1);
  if constexpr (std::is_same_v<N, Flt>)
    for (std::int64_t s = 0; s < 4096; ++s) small_weights_.push_back(byte_weight(s, mean_));
}

template <class N>
N Scan<N>::weight(std::int64_t size) {
  if constexpr (std::is_same_v<N, Flt>) {
    double w = size >= 0 && size < 4096 ? small_weights_[static_cast<std::size_t>(size)]
                                         : byte_weight(size, mean_);
    return Flt(w, true);
  } else {
    return 1;
  }
}

template <class N>
N Scan<N>::weight_of(const Block& b) const {
  if constexpr (std::is_same_v<N, Flt>) return Flt(b.w, true);
  else return 1;
}

template <class N>
std::uint32_t Scan<N>::thread_of(const Word& tid) {
  std::uint32_t i = thread_ids_.find(tid);
  if (i != WordIndex::none) return i;
  i = thread_ids_.add(tid, static_cast<std::uint32_t>(threads_.size()));
  threads_.push_back(Thread{OwnedWord::of(tid), 0, N{}, static_cast<std::uint64_t>(n_), N{}});
  return i;
}

template <class N>
std::uint32_t Scan<N>::size_row(std::int64_t size) {
  std::uint32_t* slot;
  if (size >= 0 && size < 65536) {
    if (small_sizes_.empty()) small_sizes_.assign(65536, 0);
    slot = &small_sizes_[static_cast<std::size_t>(size)];
  } else {
    slot = &big_sizes_[size];
  }
  if (*slot == 0) {
    sizes_.push_back(SizeRow{size});
    *slot = static_cast<std::uint32_t>(sizes_.size());
  }
  return *slot - 1;
}

template <class N>
void Scan<N>::event(const Event& e) {
  ++n_;
  std::uint32_t ti = thread_of(e.tid);
  threads_[ti].events += 1;
  if (e.t_is_number) set_last_t(e.t);
  switch (e.op) {
    case Op::free: free_event(e, ti); break;
    case Op::realloc: realloc_event(e, ti); break;
    default: alloc_event(e, ti); break;
  }
  line_done();
}

template <class N>
void Scan<N>::snapshot_if_pending() {
  if (!peak_pending_) return;
  if (as_double(lbytes_) >= as_double(snap_peak_) * kPeakSnapshotStep) {
    snap_peak_ = lbytes_;
    snapshot();
  }
  peak_pending_ = false;
}

// Live bytes by site and live blocks by size, at (within 1% of) the peak.
template <class N>
void Scan<N>::snapshot() {
  peak_sites_.clear();
  for (std::uint32_t i = 0; i < sites_.size(); ++i)
    if (as_double(sites_[i].f[2]) > 0) peak_sites_.emplace_back(i, sites_[i].f[2]);
  peak_sizes_.clear();
  for (std::uint32_t i = 0; i < sizes_.size(); ++i) {
    N v = sizes_[i].count - sizes_[i].freed;
    if (as_double(v) > 0) peak_sizes_.emplace_back(i, v);
  }
}

template <class N>
void Scan<N>::release(const Block& b) {
  N w = weight_of(b);
  lbytes_ -= b.size * w;
  lblocks_ -= w;
  sizes_[size_row(b.size)].freed += w;
  if (b.site) sites_[b.site - 1].f[2] -= b.size * w;
}

template <class N>
void Scan<N>::free_event(const Event& e, std::uint32_t ti) {
  Thread& th = threads_[ti];
  Block b;
  LiveMap::Taken taken = live_.take(e.ptr, b);
  if (taken == LiveMap::Taken::live) {
    N w = weight_of(b);
    counts_[kFree] += w;
    th.calls += w;
    snapshot_if_pending();
    release(b);
    if (lbytes_ < bmin_) bmin_ = lbytes_;
    if (b.thread == ti && th.events - static_cast<std::int64_t>(b.thread_event) <= kTempWindow) {
      tmp_blocks_ += w;
      tmp_bytes_ += b.size * w;
      if (b.site) {
        sites_[b.site - 1].f[3] += w;
        sites_[b.site - 1].f[4] += b.size * w;
      }
    }
    return;
  }
  counts_[kFree] += one_;
  th.calls += one_;
  if (taken == LiveMap::Taken::tombstone) {
    ++double_;
    anomaly("double free", &e, e.ptr, {});
  } else {
    ++unknown_;
    anomaly("free of unknown pointer", &e, e.ptr, {});
  }
}

template <class N>
void Scan<N>::alloc_event(const Event& e, std::uint32_t ti) {
  bool failed = e.layer == no_layer;
  N w = failed ? one_ : weight(e.size);   // failures: all logged, weight 1
  counts_[e.op == Op::malloc ? kMalloc : e.op == Op::calloc ? kCalloc : kAligned] += w;
  threads_[ti].calls += w;
  if (failed) {
    ++failed_;
    return;
  }
  if (e.op == Op::aligned && e.align > 16) {
    std::uint32_t r = size_row(e.size);
    if (!sizes_[r].in_aligned) {   // aligned_over16 keeps its own order of first use
      sizes_[r].in_aligned = true;
      aligned_order_.push_back(r);
    }
    sizes_[r].aligned += w;
  }
  new_block(e, ti, w);
}

template <class N>
void Scan<N>::realloc_event(const Event& e, std::uint32_t ti) {
  Thread& th = threads_[ti];
  bool no_new = is_null(e.ptr) || is_dash(e.ptr);
  N w = no_new ? dash_w_ : weight(e.size);
  if (is_null(e.ptr) && (e.size != 0 || is_null(e.old))) {
    counts_[kRealloc] += one_;   // failed: the old block is untouched
    th.calls += one_;
    ++failed_;
    return;
  }
  if (!is_null(e.old) && !is_dash(e.old)) {
    Block b;
    if (live_.take(e.old, b) == LiveMap::Taken::live) {
      if (is_null(e.ptr)) w = weight_of(b);   // realloc(p, 0): counted through p
      snapshot_if_pending();
      release(b);
      if (lbytes_ < bmin_) bmin_ = lbytes_;
    } else {
      ++bad_realloc_;
      anomaly("realloc of a pointer that is not live", &e, e.old, {});
    }
  }
  counts_[kRealloc] += w;
  th.calls += w;
  if (!no_new) new_block(e, ti, w);
}

// A new block of e.size bytes at e.ptr, served by layer e.layer.
template <class N>
void Scan<N>::new_block(const Event& e, std::uint32_t ti, N w) {
  inexact_ |= !e.size_fits;
  sizes_[size_row(e.size)].count += w;
  auto& lay = layers_[static_cast<std::size_t>(e.layer)];
  lay.first += w;
  lay.second += e.size * w;
  Thread& th = threads_[ti];
  th.bytes += e.size * w;
  Block& b = live_.slot(e.ptr);
  if (b.live) {   // allocated again while live: a free was lost
    ++reused_;
    release(b);
    anomaly("allocation of a live pointer", &e, e.ptr, {});
  }
  std::uint32_t site = 0;
  if (e.has_stack) {
    std::uint32_t s = site_ids_.find(e.stack);
    if (s == WordIndex::none) {
      s = site_ids_.add(e.stack, static_cast<std::uint32_t>(sites_.size()));
      sites_.push_back(Site{OwnedWord::of(e.stack)});
    }
    Site& row = sites_[s];
    row.f[0] += w;
    row.f[1] += e.size * w;
    row.f[2] += e.size * w;
    site = s + 1;
  }
  b.size = e.size;
  if (e.t.canonical()) {
    b.t = e.t.value;
    b.t_text = 0;
  } else {
    t_texts_.emplace_back(e.t.text);
    b.t_text = static_cast<std::uint32_t>(t_texts_.size());
  }
  b.n = static_cast<std::uint64_t>(n_);
  b.thread_event = static_cast<std::uint64_t>(th.events);
  if constexpr (std::is_same_v<N, Flt>) b.w = w.v;
  b.thread = ti;
  b.site = site;
  b.op = e.op;
  b.live = true;
  lbytes_ += e.size * w;
  lblocks_ += w;
  if (lbytes_ > bmax_) {
    bmax_ = lbytes_;
    if (lbytes_ > peak_) {
      peak_ = lbytes_;
      peak_t_ = e.t_is_number ? TimeVal::of(e.t) : TimeVal{};
      peak_pending_ = true;
    }
  }
}

template <class N>
void Scan<N>::anomaly(const char* kind, const Event* e, const Word& ptr, Bytes line) {
  if (anomalies_.size() >= kAnomalies) return;
  if (e)
    anomalies_.push_back(Anomaly{kind, n_ + skipped_, spelling(e->t, false), spelling(e->tid, false),
                                 spelling(ptr, true)});
  else
    anomalies_.push_back(Anomaly{kind, n_ + skipped_, "?", "?", std::string(line)});
}

template <class N>
void Scan<N>::set_last_t(const Word& digits) {
  if (digits.canonical() && last_t_.big.empty()) last_t_.v = digits.value;
  else last_t_ = TimeVal::of(digits);
}

// Timeline: a point every `step` lines (any line), halved to stay under 2 x kTimelinePoints.
template <class N>
void Scan<N>::line_done() {
  if (--step_left_ != 0) return;
  points_.push_back(Point{last_t_, lbytes_, bmax_, bmin_});
  bmax_ = bmin_ = lbytes_;
  if (points_.size() >= 2 * kTimelinePoints) {
    std::vector<Point> half;
    for (std::size_t k = 0; k + 1 < points_.size(); k += 2) {
      const Point& a = points_[k];
      const Point& b = points_[k + 1];
      half.push_back(Point{b.t, b.live, b.max > a.max ? b.max : a.max, b.min < a.min ? b.min : a.min});
    }
    if (points_.size() % 2) half.push_back(points_.back());
    points_.swap(half);
    step_ *= 2;
  }
  step_left_ = step_;
}

template <class N>
void Scan<N>::stack(const StackDef& s) {
  std::uint32_t i = stack_ids_.find(s.id);
  if (i == WordIndex::none) {
    i = stack_ids_.add(s.id, static_cast<std::uint32_t>(stacks_.size()));
    stacks_.push_back(StackRow{OwnedWord::of(s.id), {}, 0});
  }
  StackRow& row = stacks_[i];   // a repeated id keeps its place, takes the new frames
  row.frames.clear();
  for (const Word& f : s.frames) row.frames.push_back(OwnedWord::of(f));
  row.modules = modules_.size();
  ++skipped_;
  line_done();
}

template <class N>
void Scan<N>::module(const Module& m) {
  modules_.push_back(ModuleRow{OwnedWord::of(m.base), OwnedWord::of(m.lo), OwnedWord::of(m.hi),
                               std::string(m.build_id), std::string(m.path)});
  ++skipped_;
  line_done();
}

template <class N>
void Scan<N>::footer(Bytes text) {
  has_footer_ = true;
  footer_ = std::string(text);
  footer_at_ = n_;
  ++skipped_;
  line_done();
}

template <class N>
void Scan<N>::malformed(const Malformed& m) {
  ++n_;
  if (m.has_tid) threads_[thread_of(m.tid)].events += 1;   // counted before the line failed
  if (m.has_time) set_last_t(m.time);
  ++malformed_;
  anomaly("malformed line", nullptr, Word{}, m.text);
  line_done();
}

template <class N>
void Scan<N>::comment() {
  ++skipped_;
  line_done();
}

// Forget tombstones when they outgrow the live set (bounded memory on huge logs).
template <class N>
void Scan<N>::checkpoint() {
  if (static_cast<double>(live_.size()) > 2 * as_double(lblocks_) + kTombstoneSlack) {
    live_.forget_tombstones();
    tombstones_dropped_ = true;
  }
}

template <class N>
void Scan<N>::end(bool cut, Bytes cut_text) {
  cut_ = cut;
  cut_text_ = std::string(cut_text);
  if (cfg_.timeline && step_left_ != step_) points_.push_back(Point{last_t_, lbytes_, bmax_, bmin_});
  if (peak_pending_) snapshot();   // the log ended at its peak
}

template class Scan<Int>;
template class Scan<Flt>;

}  // namespace logscan
