// The scan as one JSON object, read by parse.py's _scan_from_json into the Python Scan.
// Lists of rows rather than objects keep it small and quick to load; every table keeps the
// order in which the Python reader's dicts would hold its keys.
#include <algorithm>

#include "json_out.hpp"
#include "scan.hpp"

namespace logscan {

namespace {
constexpr int kFormat = 1;   // bumped when the shape changes; parse.py checks it

void dec_or_text(JsonOut& o, const OwnedWord& w) {   // a decimal word as text (a dict key)
  if (w.canonical()) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, w.value);
    o.str(std::string_view(b, static_cast<std::size_t>(r.ptr - b)));
  } else {
    o.str(w.text);
  }
}

void hex_value(JsonOut& o, const OwnedWord& w) {   // canonical hex as its number; else the text
  if (w.canonical()) o.num(w.value);
  else o.str(w.text);
}

void time_val(JsonOut& o, const TimeVal& t) {
  if (t.big.empty()) o.num(t.v);
  else o.raw(t.big);   // digits only, no leading zero: a JSON integer of any size
}
}  // namespace

template <class N>
void Scan<N>::write_json(JsonOut& o) const {
  o.raw("{\"format\":").num(std::int64_t{kFormat});
  o.raw(",\"events\":").num(n_);
  o.raw(",\"counts\":[");
  for (const N& c : counts_) o.num(c).raw(",");
  o.num(failed_).raw("]");
  o.raw(",\"tombstones_dropped\":").boolean(tombstones_dropped_);
  o.raw(",\"layers\":[");
  for (std::size_t i = 0; i < layers_.size(); ++i)
    o.raw(i ? ",[" : "[").num(layers_[i].first).raw(",").num(layers_[i].second).raw("]");
  o.raw("],\"threads\":[");
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    const Thread& t = threads_[i];
    o.raw(i ? ",[" : "[");
    dec_or_text(o, t.tid);
    o.raw(",").num(t.events).raw(",").num(t.bytes).raw(",").num(t.first).raw(",").num(t.calls).raw("]");
  }
  auto size_pairs = [&](const char* key, auto rows, auto value) {
    o.raw(key);
    bool first = true;
    for (std::uint32_t r : rows) {
      o.raw(first ? "[" : ",[").num(sizes_[r].size).raw(",").num(value(r)).raw("]");
      first = false;
    }
    o.raw("]");
  };
  std::vector<std::uint32_t> all(sizes_.size());
  for (std::uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  size_pairs("],\"sizes\":[", all, [&](std::uint32_t r) { return sizes_[r].count; });
  size_pairs(",\"aligned_over16\":[", aligned_order_, [&](std::uint32_t r) { return sizes_[r].aligned; });
  o.raw(",\"peak_sizes\":[");
  for (std::size_t i = 0; i < peak_sizes_.size(); ++i)
    o.raw(i ? ",[" : "[").num(sizes_[peak_sizes_[i].first].size).raw(",").num(peak_sizes_[i].second).raw("]");
  // Live blocks, oldest first: [ptr, size, t, thread index, thread event, event index, op, weight, stack id].
  std::vector<std::pair<std::string, const Block*>> live;
  live_.each_live([&](std::string_view p, const Block& b) { live.emplace_back(std::string(p), &b); });
  std::sort(live.begin(), live.end(), [](const auto& a, const auto& b) { return a.second->n < b.second->n; });
  o.raw("],\"live\":[");
  static const char* ops[] = {"\"m\"", "\"c\"", "\"a\"", "\"r\""};
  for (std::size_t i = 0; i < live.size(); ++i) {
    const Block& b = *live[i].second;
    o.raw(i ? ",[" : "[").str(live[i].first).raw(",").num(b.size).raw(",");
    if (b.t_text) o.str(t_texts_[b.t_text - 1]);
    else dec_or_text(o, OwnedWord{b.t, {}});
    o.raw(",").num(std::uint64_t{b.thread}).raw(",").num(b.thread_event).raw(",").num(b.n);
    o.raw(",").raw(ops[static_cast<int>(b.op)]).raw(",").num(weight_of(b)).raw(",");
    if (b.site) dec_or_text(o, sites_[b.site - 1].id);
    else o.raw("null");
    o.raw("]");
  }
  o.raw("],\"live_bytes\":").num(lbytes_).raw(",\"live_blocks\":").num(lblocks_);
  o.raw(",\"peak\":").num(peak_).raw(",\"peak_t\":");
  time_val(o, peak_t_);
  o.raw(",\"temp_blocks\":").num(tmp_blocks_).raw(",\"temp_bytes\":").num(tmp_bytes_);
  o.raw(",\"unknown\":").num(unknown_).raw(",\"double\":").num(double_);
  o.raw(",\"bad_realloc\":").num(bad_realloc_).raw(",\"reused\":").num(reused_);
  o.raw(",\"malformed\":").num(malformed_).raw(",\"anomalies\":[");
  for (std::size_t i = 0; i < anomalies_.size(); ++i) {
    const Anomaly& a = anomalies_[i];
    o.raw(i ? ",[" : "[").str(a.kind).raw(",").num(a.line).raw(",").str(a.t).raw(",").str(a.tid);
    o.raw(",").str(a.ptr).raw("]");
  }
  o.raw("],\"footer\":");
  if (has_footer_) o.str(footer_);
  else o.raw("null");
  o.raw(",\"footer_at\":").num(footer_at_);
  o.raw(",\"cut_line\":").boolean(cut_).raw(",\"cut_text\":").str(cut_text_);
  o.raw(",\"last_t\":");
  time_val(o, last_t_);
  o.raw(",\"points\":[");
  for (std::size_t i = 0; i < points_.size(); ++i) {
    const Point& p = points_[i];
    o.raw(i ? ",[" : "[");
    time_val(o, p.t);
    o.raw(",").num(p.live).raw(",").num(p.max).raw(",").num(p.min).raw("]");
  }
  o.raw("],\"stacks\":[");
  for (std::size_t i = 0; i < stacks_.size(); ++i) {
    const StackRow& s = stacks_[i];
    o.raw(i ? ",[" : "[");
    dec_or_text(o, s.id);
    o.raw(",[");
    for (std::size_t k = 0; k < s.frames.size(); ++k) {
      if (k) o.raw(",");
      hex_value(o, s.frames[k]);
    }
    o.raw("],").num(static_cast<std::uint64_t>(s.modules)).raw("]");
  }
  o.raw("],\"modules\":[");
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    const ModuleRow& m = modules_[i];
    o.raw(i ? ",[" : "[");
    hex_value(o, m.base);
    o.raw(",");
    hex_value(o, m.lo);
    o.raw(",");
    hex_value(o, m.hi);
    o.raw(",");
    if (m.build_id == "-") o.raw("null");
    else o.str(m.build_id);
    o.raw(",").str(m.path).raw("]");
  }
  o.raw("],\"sites\":[");
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    o.raw(i ? ",[" : "[");
    dec_or_text(o, sites_[i].id);
    for (const N& f : sites_[i].f) o.raw(",").num(f);
    o.raw("]");
  }
  o.raw("],\"peak_sites\":[");
  for (std::size_t i = 0; i < peak_sites_.size(); ++i) {
    o.raw(i ? ",[" : "[");
    dec_or_text(o, sites_[peak_sites_[i].first].id);
    o.raw(",").num(peak_sites_[i].second).raw("]");
  }
  o.raw("]}\n");
}

template void Scan<Int>::write_json(JsonOut&) const;
template void Scan<Flt>::write_json(JsonOut&) const;

}  // namespace logscan
