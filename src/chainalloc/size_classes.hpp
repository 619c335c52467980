// SizeClasses: the table that maps a request size to a class and a class to its block size.
// Classes are ascending multiples of 16 (so every block keeps malloc's 16-byte alignment), set
// at run time. Sizes up to kLookupLimit map through a byte table (one load); larger ones by a
// binary search over at most kMaxClasses entries.
#pragma once

#include "allocator.hpp"
#include "default_classes.hpp"

#include <cstdint>
#include <span>

namespace chainalloc {

class SizeClasses {
public:
    static constexpr std::size_t kMaxClasses = 64;
    static constexpr std::size_t kGranule = 16;
    static constexpr std::size_t kLookupLimit = 4096;
    static constexpr int kNone = -1;

    /// Sets the table; false (and the table left empty) unless sizes are strictly ascending,
    /// positive multiples of 16, and at most kMaxClasses of them.
    bool assign(std::span<const std::uint32_t> sizes) noexcept {
        count_ = 0;
        if (sizes.empty() || sizes.size() > kMaxClasses) return false;
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            if (sizes[i] == 0 || sizes[i] % kGranule != 0) return false;
            if (i > 0 && sizes[i] <= sizes[i - 1]) return false;
            sizes_[i] = sizes[i];
        }
        count_ = sizes.size();
        std::size_t cls = 0;
        for (std::size_t slot = 0; slot < kSlots; ++slot) {
            std::size_t n = slot * kGranule;
            while (cls < count_ && sizes_[cls] < n) ++cls;
            lookup_[slot] = cls < count_ ? static_cast<std::uint8_t>(cls) : kNoSlot;
        }
        return true;
    }

    /// The default table (default_classes.hpp): 40 classes, 16 B..32 KiB, waste under 25%.
    static SizeClasses defaults() noexcept {
        SizeClasses t;
        t.assign(kDefaultClasses.sizes);
        return t;
    }

    std::size_t count() const noexcept { return count_; }
    std::size_t size_of(std::size_t cls) const noexcept { return sizes_[cls]; }
    std::size_t max_size() const noexcept { return count_ ? sizes_[count_ - 1] : 0; }

    /// The smallest class that holds n bytes (0 bytes take the smallest), or kNone.
    int class_of(std::size_t n) const noexcept {
        if (n <= kLookupLimit) {
            std::uint8_t c = lookup_[(n + kGranule - 1) / kGranule];
            return c >= count_ ? kNone : c;  // kNoSlot, or a table never assigned
        }
        if (n > max_size()) return kNone;
        std::size_t lo = 0, hi = count_ - 1;  // sizes_[hi] >= n
        while (lo < hi) {
            std::size_t mid = (lo + hi) / 2;
            if (sizes_[mid] >= n)
                hi = mid;
            else
                lo = mid + 1;
        }
        return static_cast<int>(lo);
    }

    /// The smallest class that holds n bytes and whose size is a multiple of align: in a region
    /// whose classes start at align-multiples, every block of that class is then aligned.
    int class_of(std::size_t n, std::size_t align) const noexcept {
        int c = class_of(n);
        if (align <= kGranule || c == kNone) return c;
        for (std::size_t i = c; i < count_; ++i)
            if (sizes_[i] % align == 0) return static_cast<int>(i);
        return kNone;
    }

private:
    static constexpr std::size_t kSlots = kLookupLimit / kGranule + 1;
    static constexpr std::uint8_t kNoSlot = 0xff;

    std::uint32_t sizes_[kMaxClasses] = {};
    std::size_t count_ = 0;
    std::uint8_t lookup_[kSlots] = {};
};

}  // namespace chainalloc
