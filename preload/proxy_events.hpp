// What the chain tells its proxy layers. A proxy at position i sees a request that passes
// through it: an allocation served by a later layer, the free or realloc of a block owned by a
// later layer. Today a proxy counts events exactly (shown by CHAINALLOC_STATS); the event log
// of docs/DESIGN.md §5 attaches here.
#pragma once

#include "config/chain_spec.hpp"

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload {

struct ProxyCounts {
    std::uint64_t allocations, failed, frees, reallocations;
};

// Set while realloc(NULL, n) is served as malloc(n), so that proxies count and log a realloc.
extern __thread bool t_realloc_of_null __attribute__((tls_model("initial-exec")));
class ReallocOfNull {
public:
    ReallocOfNull() noexcept { t_realloc_of_null = true; }
    ~ReallocOfNull() { t_realloc_of_null = false; }
    ReallocOfNull(const ReallocOfNull&) = delete;
    ReallocOfNull& operator=(const ReallocOfNull&) = delete;
};

void proxy_attach(unsigned layer, const config::ProxySpec& spec) noexcept;
void proxy_on_allocate(unsigned layer, std::size_t n, std::size_t align, bool zero, void* result,
                       unsigned served_by) noexcept;
void proxy_on_free(unsigned owner, void* p) noexcept;
void proxy_on_realloc(unsigned owner, void* old, std::size_t n, void* result, unsigned served_by) noexcept;
void proxy_before_fork() noexcept;
void proxy_after_fork(bool child) noexcept;
ProxyCounts proxy_counts(unsigned layer) noexcept;

}  // namespace chainalloc::preload
