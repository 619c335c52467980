// Destructor records for Scoped: one 24-byte record per run of same-typed values made back to
// back, placed in the region itself just before the run's first value, linked newest first.
// A scope's end walks them and destroys every value, newest first. Trivially destructible
// values need none.
#pragma once

#include "allocator.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace chainalloc::detail {

class DestructorRecords {
public:
    struct Record {
        Record* prev;
        void (*destroy)(Record*) noexcept;
        std::size_t count;
    };

    /// Where the first value of a run whose record is at r goes.
    template <class T>
    static char* first_of(Record* r) noexcept {
        auto base = reinterpret_cast<std::uintptr_t>(r);
        return reinterpret_cast<char*>(r) + (align_up(base + sizeof(Record), alignof(T)) - base);
    }

    /// True if a T made at `cur` can join the newest run: same type, nothing made or allocated
    /// since (cur == made_end), and right after the run's last value.
    template <class T>
    bool extends(const char* cur, const char* made_end) const noexcept {
        return last_ && last_->destroy == &destroy_run<T> && cur == made_end &&
               cur == first_of<T>(last_) + last_->count * sizeof(T);
    }

    /// Records a new run of one T at `at` (the value already made at first_of<T>(at)).
    template <class T>
    void start(void* at) noexcept {
        last_ = ::new (at) Record{last_, &destroy_run<T>, 1};
    }

    /// One more value in the newest run.
    void extend() noexcept { ++last_->count; }

    /// Destroys every recorded value, newest first, and forgets the records.
    void destroy_all() noexcept {
        while (last_) {
            Record* r = last_;
            last_ = r->prev;
            r->destroy(r);
        }
    }

private:
    template <class T>
    static void destroy_run(Record* r) noexcept {
        char* first = first_of<T>(r);
        for (std::size_t i = r->count; i-- > 0;)
            std::destroy_at(std::launder(reinterpret_cast<T*>(first + i * sizeof(T))));
    }

    Record* last_ = nullptr;  // newest
};

}  // namespace chainalloc::detail
