// MemoryResource: any chainalloc allocator as a std::pmr::memory_resource, so the standard's
// pmr containers run on a chain:
//
//   chainalloc::MemoryResource<MyChain> res(chain);
//   std::pmr::vector<int> v(&res);
//
// pmr reports failure by throwing std::bad_alloc, so this adapter turns an empty Block into
// that exception; the allocator below it stays exception-free. The allocator must outlive the
// resource, and the resource every container that uses it.
#pragma once

#include "allocator.hpp"

#include <memory_resource>
#include <new>

namespace chainalloc {

template <Allocator A>
class MemoryResource final : public std::pmr::memory_resource {
public:
    explicit MemoryResource(A& a) noexcept : a_(&a) {}

    A& allocator() const noexcept { return *a_; }

private:
    void* do_allocate(std::size_t bytes, std::size_t align) override {
        Block b = a_->allocate(bytes, align);
        if (!b) throw std::bad_alloc();
        return b.ptr;
    }

    // pmr gives back the size it asked for, which the contract accepts (it lies in
    // [requested, returned]), so no size needs remembering here.
    void do_deallocate(void* p, std::size_t bytes, std::size_t) override {
        a_->deallocate(Block{p, bytes});
    }

    // Equal when either can free the other's memory: the same resource, or another adapter
    // over the same allocator object.
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        if (this == &other) return true;
        auto* same_kind = dynamic_cast<const MemoryResource*>(&other);
        return same_kind && same_kind->a_ == a_;
    }

    A* a_;
};

}  // namespace chainalloc
