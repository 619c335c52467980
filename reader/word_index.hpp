// Numbers the distinct words (thread ids, stack ids) of a log in order of first appearance,
// keyed as the Python reader keys them: a canonical word by its value, any other spelling by
// its text. The last hit is cached: consecutive lines are mostly of one thread.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "record.hpp"

namespace logscan {

// A word kept past its line: the canonical value, or the text as written.
struct OwnedWord {
  std::uint64_t value = 0;
  std::string text;
  bool canonical() const { return text.empty(); }
  static OwnedWord of(const Word& w) { return OwnedWord{w.value, std::string(w.text)}; }
};

class WordIndex {
 public:
  static constexpr std::uint32_t none = UINT32_MAX;

  std::uint32_t find(const Word& w) const {
    if (w.canonical()) {
      if (w.value == last_value_ && last_ != none) return last_;
      auto it = values_.find(w.value);
      if (it == values_.end()) return none;
      last_value_ = w.value;
      return last_ = it->second;
    }
    auto it = texts_.find(std::string(w.text));
    return it == texts_.end() ? none : it->second;
  }

  // Its index; a new word gets the next one.
  std::uint32_t add(const Word& w, std::uint32_t next) {
    if (w.canonical()) {
      values_.emplace(w.value, next);
      last_value_ = w.value;
      return last_ = next;
    }
    texts_.emplace(std::string(w.text), next);
    return next;
  }

 private:
  std::unordered_map<std::uint64_t, std::uint32_t> values_;
  std::unordered_map<std::string, std::uint32_t> texts_;
  mutable std::uint64_t last_value_ = 0;
  mutable std::uint32_t last_ = none;
};

}  // namespace logscan
