// ThreadCached<Tag>: CachedSegregated (cached_segregated.hpp) with each thread's cache in a
// thread_local of the Tag type: one ThreadCached object per Tag (a second would share the
// first's caches with a different central). ThreadCache is all zero and has no constructor or
// destructor, so the thread_local needs no TLS init hook and can be initial-exec TLS.
// flush_thread() gives a thread's blocks back when it ends (call it from the thread's exit
// path: a pthread key destructor, say).
#pragma once

#include "cached_segregated.hpp"

namespace chainalloc {

/// The Caches policy of ThreadCached: one thread_local cache per Tag.
template <class Tag>
struct TagCaches {
    using Cache = ThreadCache<Segregated<SpinLock>>;
    static constinit inline thread_local Cache cache{};
    Cache* get() const noexcept { return &cache; }
};

template <class Tag>
using ThreadCached = CachedSegregated<TagCaches<Tag>>;

}  // namespace chainalloc
