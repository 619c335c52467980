// FreeList: a fixed number of fixed-size blocks, carved from a parent allocator up front.
// Exhaustion is a failure, not growth; freed blocks are pushed on an intrusive list and are the
// next ones handed out (the seed's example: 64 blocks of 1024 bytes, the 65th fails, every block
// comes back for the next round).
#pragma once

#include "allocator.hpp"
#include "system.hpp"

#include <utility>

namespace chainalloc {

template <Allocator Parent = System>
class FreeList {
    struct Node {
        Node* next;
    };

public:
    /// block_size is rounded up to a multiple of sizeof(void*) (a free block holds a link).
    /// Check `ready()`: false if the parent could not give the memory.
    FreeList(std::size_t block_size, std::size_t count, Parent parent = {})
        : parent_(std::move(parent)),
          block_size_(align_up(std::max(block_size, sizeof(Node)), sizeof(Node))),
          count_(count),
          block_align_(std::min<std::size_t>(block_size_ & -block_size_, 4096)) {
        if (count_ == 0 || block_size_ > SIZE_MAX / count_) {
            count_ = 0;  // no region: nothing to thread
            return;
        }
        region_ = parent_.allocate(block_size_ * count_, std::max(block_align_, kMinAlign));
        if (!region_) count_ = 0;
        deallocate_all();
    }

    // Movable, so it can be handed to a composite; the blocks stay where they are.
    FreeList(FreeList&& other) noexcept
        : parent_(std::move(other.parent_)),
          block_size_(other.block_size_),
          count_(std::exchange(other.count_, 0)),
          block_align_(other.block_align_),
          region_(std::exchange(other.region_, Block{})),
          head_(std::exchange(other.head_, nullptr)),
          available_(std::exchange(other.available_, 0)) {}
    FreeList& operator=(FreeList&&) = delete;
    FreeList(const FreeList&) = delete;
    FreeList& operator=(const FreeList&) = delete;

    ~FreeList() {
        if (region_) parent_.deallocate(region_);
    }

    bool ready() const noexcept { return static_cast<bool>(region_); }
    std::size_t block_size() const noexcept { return block_size_; }
    std::size_t capacity() const noexcept { return count_; }
    std::size_t available() const noexcept { return available_; }

    Block allocate(std::size_t n, std::size_t align) noexcept {
        if (!head_ || n > block_size_ || align > block_align_) return {};
        Node* node = head_;
        head_ = node->next;
        --available_;
        return {node, block_size_};
    }

    void deallocate(Block b) noexcept {
        if (!b.ptr) return;
        Node* node = static_cast<Node*>(b.ptr);
        node->next = head_;
        head_ = node;
        ++available_;
    }

    bool owns(const void* p) const noexcept {
        auto* c = static_cast<const char*>(p);
        auto* begin = static_cast<const char*>(region_.ptr);
        return region_ && c >= begin && c < begin + block_size_ * count_;  // not the parent's slack
    }

    /// Every block is block_size() long, so a request that fits is served in place.
    bool expand(Block& b, std::size_t n) noexcept {
        if (!b.ptr || n > block_size_) return false;  // an empty block has nothing to expand
        b.size = block_size_;
        return true;
    }

    std::size_t good_size(std::size_t n) const noexcept { return n <= block_size_ ? block_size_ : 0; }
    std::size_t usable_size(const void*) const noexcept { return block_size_; }

    /// Threads every block on the list again, lowest address first.
    void deallocate_all() noexcept {
        head_ = nullptr;
        available_ = 0;
        if (!region_) return;
        char* base = static_cast<char*>(region_.ptr);
        for (std::size_t i = count_; i-- > 0;) deallocate({base + i * block_size_, block_size_});
    }

private:
    [[no_unique_address]] Parent parent_;
    std::size_t block_size_;
    std::size_t count_;
    std::size_t block_align_;
    Block region_{};
    Node* head_ = nullptr;
    std::size_t available_ = 0;
};

}  // namespace chainalloc
