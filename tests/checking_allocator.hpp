// CheckingAllocator: a test wrapper around any allocator that records every live block and
// flags misuse of the contract in allocator.hpp — a deallocate of a pointer it never handed
// out (or handed out and already took back), a size outside [requested, returned], a block
// that is misaligned or smaller than asked for. Tests then assert errors() == 0 and
// live_blocks().empty(). Bookkeeping uses the ordinary heap: this is for tests, not the preload.
#pragma once

#include <chainalloc/allocator.hpp>
#include <chainalloc/system.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chainalloc::testing {

/// One block handed out and not yet given back.
struct LiveBlock {
    void* ptr = nullptr;
    std::size_t requested = 0;  // the size asked for
    std::size_t returned = 0;   // the size the parent reported (>= requested)
    std::size_t align = 0;
    std::uint64_t serial = 0;   // allocation order, so reports list oldest first
};

template <Allocator Parent = System>
class CheckingAllocator {
public:
    CheckingAllocator() = default;
    explicit CheckingAllocator(Parent parent) : parent_(std::move(parent)) {}
    // A copy would hold records of blocks it does not own; tests pass it by reference.
    CheckingAllocator(const CheckingAllocator&) = delete;
    CheckingAllocator& operator=(const CheckingAllocator&) = delete;
    CheckingAllocator(CheckingAllocator&&) = default;
    CheckingAllocator& operator=(CheckingAllocator&&) = default;

    Block allocate(std::size_t n, std::size_t align = kMinAlign) {
        if (fail_countdown_ == 0) return {};
        if (fail_countdown_ > 0) --fail_countdown_;
        Block b = parent_.allocate(n, align);
        if (!b) return b;
        if (!is_aligned(b.ptr, align))
            error("allocate(%zu, %zu) returned %p, misaligned", n, align, b.ptr);
        if (b.size < n) error("allocate(%zu, %zu) returned only %zu bytes", n, align, b.size);
        record(b, n, align);
        ++allocations_;
        return b;
    }

    void deallocate(Block b) {
        if (!b.ptr) return;  // giving back the empty block is allowed and harmless
        auto it = live_.find(b.ptr);
        if (it == live_.end()) {
            // Not forwarded: the parent could crash on a pointer that is not its own.
            error("deallocate(%p, %zu): not a live block (never allocated, or freed twice)", b.ptr,
                  b.size);
            return;
        }
        const LiveBlock& lb = it->second;
        if (b.size < lb.requested || b.size > lb.returned) {
            error("deallocate(%p, %zu): size outside [%zu, %zu]", b.ptr, b.size, lb.requested,
                  lb.returned);
            b.size = lb.returned;  // hand the parent a size it accepts
        }
        live_.erase(it);
        ++deallocations_;
        parent_.deallocate(b);
    }

    bool owns(const void* p) const
        requires BlockOwner<Parent>
    {
        return parent_.owns(p);
    }

    bool reallocate(Block& b, std::size_t n)
        requires Reallocating<Parent>
    {
        return resize(b, n, [&](Block& x) { return parent_.reallocate(x, n); });
    }

    bool expand(Block& b, std::size_t n)
        requires Expanding<Parent>
    {
        return resize(b, n, [&](Block& x) { return parent_.expand(x, n); });
    }

    void deallocate_all()
        requires DeallocatingAll<Parent>
    {
        deallocations_ += live_.size();
        live_.clear();
        parent_.deallocate_all();
    }

    std::size_t good_size(std::size_t n) const
        requires GoodSize<Parent>
    {
        return parent_.good_size(n);
    }

    /// The blocks still out, oldest first.
    std::vector<LiveBlock> live_blocks() const {
        std::vector<LiveBlock> out;
        out.reserve(live_.size());
        for (const auto& [p, lb] : live_) out.push_back(lb);
        std::sort(out.begin(), out.end(),
                  [](const LiveBlock& a, const LiveBlock& b) { return a.serial < b.serial; });
        return out;
    }
    std::size_t live_count() const noexcept { return live_.size(); }
    std::size_t live_bytes() const noexcept {
        std::size_t total = 0;
        for (const auto& [p, lb] : live_) total += lb.requested;
        return total;
    }
    bool is_live(const void* p) const { return live_.count(const_cast<void*>(p)) != 0; }

    std::size_t errors() const noexcept { return errors_; }
    const std::string& last_error() const noexcept { return last_error_; }
    std::size_t allocations() const noexcept { return allocations_; }
    std::size_t deallocations() const noexcept { return deallocations_; }

    /// Lets the next `n` allocations through, then fails every one until called again with
    /// a negative n (never fail). For testing how callers handle exhaustion.
    void fail_after(long n) noexcept { fail_countdown_ = n; }

    Parent& parent() noexcept { return parent_; }

private:
    template <class Op>
    bool resize(Block& b, std::size_t n, Op op) {
        LiveBlock old{};
        if (b.ptr) {
            auto it = live_.find(b.ptr);
            if (it == live_.end()) {
                error("resize(%p, %zu -> %zu): not a live block", b.ptr, b.size, n);
                return false;
            }
            old = it->second;
            if (b.size < old.requested || b.size > old.returned)
                error("resize(%p, %zu): size outside [%zu, %zu]", b.ptr, b.size, old.requested,
                      old.returned);
        }
        if (!op(b)) return false;  // b untouched by contract; the record stays
        if (old.ptr) live_.erase(old.ptr);
        if (b.size < n) error("resize to %zu gave only %zu bytes", n, b.size);
        record(b, n, old.ptr ? old.align : kMinAlign);
        return true;
    }

    void record(Block b, std::size_t n, std::size_t align) {
        auto [it, fresh] = live_.try_emplace(b.ptr, LiveBlock{b.ptr, n, b.size, align, ++serial_});
        if (!fresh) {
            error("allocator returned %p, which is already live", b.ptr);
            it->second = LiveBlock{b.ptr, n, b.size, align, serial_};
        }
    }

    template <class... Args>
    void error(const char* fmt, Args... args) {
        char buf[256];
        std::snprintf(buf, sizeof buf, fmt, args...);
        last_error_ = buf;
        ++errors_;
    }

    [[no_unique_address]] Parent parent_{};
    std::unordered_map<void*, LiveBlock> live_;
    std::uint64_t serial_ = 0;
    std::size_t errors_ = 0;
    std::size_t allocations_ = 0;
    std::size_t deallocations_ = 0;
    long fail_countdown_ = -1;
    std::string last_error_;
};

}  // namespace chainalloc::testing
