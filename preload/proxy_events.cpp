#include "proxy_events.hpp"

#include "runtime.hpp"

#include <atomic>

namespace chainalloc::preload {
namespace {

struct Counters {
    std::atomic<std::uint64_t> allocations{0}, failed{0}, frees{0}, reallocations{0};
};
constinit Counters g_counters[config::kMaxLayers];

bool is_proxy(unsigned i) noexcept { return g_rt.layers[i].kind == LayerKind::proxy; }

}  // namespace

void proxy_attach(unsigned, const config::ProxySpec&) noexcept {}

void proxy_on_allocate(unsigned layer, std::size_t, std::size_t, bool, void* result, unsigned) noexcept {
    (result ? g_counters[layer].allocations : g_counters[layer].failed).fetch_add(1, std::memory_order_relaxed);
}

void proxy_on_free(unsigned owner, void*) noexcept {
    if (t_state.in_allocator) return;
    for (unsigned i = 0; i < owner; ++i)
        if (is_proxy(i)) g_counters[i].frees.fetch_add(1, std::memory_order_relaxed);
}

void proxy_on_realloc(unsigned owner, void*, std::size_t, void* result, unsigned served_by) noexcept {
    if (t_state.in_allocator) return;
    unsigned seen_until = owner > served_by ? owner : served_by;
    for (unsigned i = 0; i < seen_until; ++i) {
        if (!is_proxy(i)) continue;
        (result ? g_counters[i].reallocations : g_counters[i].failed).fetch_add(1, std::memory_order_relaxed);
    }
}

void proxy_before_fork() noexcept {}
void proxy_after_fork(bool) noexcept {}

ProxyCounts proxy_counts(unsigned layer) noexcept {
    const Counters& c = g_counters[layer];
    return {c.allocations.load(), c.failed.load(), c.frees.load(), c.reallocations.load()};
}

}  // namespace chainalloc::preload
