// The aggregation: records in, the Python reader's Scan out (scripts/chainalloc_log/parse.py,
// _scan_events), figure for figure. It knows the records (record.hpp), not the text format,
// so another source (a binary log) feeds it unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "live_map.hpp"
#include "num.hpp"
#include "record.hpp"
#include "word_index.hpp"

namespace logscan {

class JsonOut;

struct ScanConfig {
  unsigned layers = 0;          // how many layers the header names
  std::int64_t sample = 1;      // the header's N
  bool weighted = false;        // sampling by bytes: each block weighs 1/p(size)
  bool timeline = false;        // keep live-bytes points for `plot`
};

// A scan as the sink of a source; write_json prints the result (scan_json.cpp).
class ScanSink : public RecordSink {
 public:
  virtual void write_json(JsonOut& out) const = 0;
  // False when the log holds numbers that Python adds up exactly and int64 cannot (a
  // successful allocation of more than 2^63 bytes, sums past 2^63): only a handmade or
  // corrupted log does; the caller then reads it with the Python pass.
  virtual bool exact() const = 0;
};

std::unique_ptr<ScanSink> make_scan(const ScanConfig& cfg);

// A time as Python's int(t): digits of any length (a few logs have absurd ones).
struct TimeVal {
  std::uint64_t v = 0;
  std::string big;              // the digits, leading zeros stripped, when v cannot hold them
  static TimeVal of(const Word& digits);
};

// N: Int (whole blocks) or Flt (weighted blocks), see num.hpp.
template <class N>
class Scan final : public ScanSink {
 public:
  explicit Scan(const ScanConfig& cfg);
  void event(const Event& e) override;
  void upcoming(std::uint64_t ptr) override { live_.prefetch(ptr); }
  void stack(const StackDef& s) override;
  void module(const Module& m) override;
  void footer(Bytes text) override;
  void malformed(const Malformed& m) override;
  void comment() override;
  void checkpoint() override;
  void end(bool cut, Bytes cut_text) override;
  void write_json(JsonOut& out) const override;
  bool exact() const override { return !inexact_ && !Int::overflowed; }

 private:
  struct Thread { OwnedWord tid; std::int64_t events = 0; N bytes{}; std::uint64_t first = 0; N calls{}; };
  struct Site { OwnedWord id; N f[5]{}; };   // allocations, bytes, live bytes, temporary blocks, bytes
  struct SizeRow { std::int64_t size; N count{}, freed{}, aligned{}; bool in_aligned = false; };
  struct StackRow { OwnedWord id; std::vector<OwnedWord> frames; std::size_t modules; };
  struct ModuleRow { OwnedWord base, lo, hi; std::string build_id, path; };
  struct Anomaly { const char* kind; std::int64_t line; std::string t, tid, ptr; };
  struct Point { TimeVal t; N live, max, min; };

  N weight(std::int64_t size);
  N weight_of(const Block& b) const;
  std::uint32_t thread_of(const Word& tid);
  std::uint32_t size_row(std::int64_t size);
  void free_event(const Event& e, std::uint32_t ti);
  void alloc_event(const Event& e, std::uint32_t ti);
  void realloc_event(const Event& e, std::uint32_t ti);
  void new_block(const Event& e, std::uint32_t ti, N w);
  void release(const Block& b);           // a live block's bytes leave the live total
  void snapshot_if_pending();
  void snapshot();
  void anomaly(const char* kind, const Event* e, const Word& ptr, Bytes line);
  void set_last_t(const Word& digits);
  void line_done();

  ScanConfig cfg_;
  double mean_;
  N one_{1}, dash_w_;
  std::vector<double> small_weights_;     // weights of sizes below 4096, computed once

  std::vector<Thread> threads_;
  WordIndex thread_ids_;
  std::vector<Site> sites_;
  WordIndex site_ids_;
  std::vector<SizeRow> sizes_;
  std::vector<std::uint32_t> small_sizes_;             // size -> row + 1, sizes below 65536
  std::unordered_map<std::int64_t, std::uint32_t> big_sizes_;
  std::vector<std::uint32_t> aligned_order_;           // rows in order of their first aligned > 16
  std::vector<std::pair<N, N>> layers_;                // requests, bytes
  std::vector<StackRow> stacks_;
  WordIndex stack_ids_;
  std::vector<ModuleRow> modules_;
  LiveMap live_;
  std::vector<std::string> t_texts_;                   // times of live blocks not in canonical form

  N lbytes_{}, lblocks_{}, peak_{}, bmax_{}, bmin_{}, snap_peak_{};
  TimeVal peak_t_;
  bool peak_pending_ = false;
  std::vector<std::pair<std::uint32_t, N>> peak_sites_, peak_sizes_;
  N counts_[5]{};                                      // malloc, calloc, realloc, aligned, free
  std::int64_t failed_ = 0;
  N tmp_blocks_{}, tmp_bytes_{};
  std::int64_t unknown_ = 0, double_ = 0, bad_realloc_ = 0, reused_ = 0, malformed_ = 0;
  std::vector<Anomaly> anomalies_;
  bool has_footer_ = false;
  std::string footer_;
  std::int64_t footer_at_ = 0, skipped_ = 0, n_ = 0;
  bool tombstones_dropped_ = false, cut_ = false, inexact_ = false;
  std::string cut_text_;

  std::int64_t step_, step_left_;
  TimeVal last_t_;
  std::vector<Point> points_;
};

}  // namespace logscan
