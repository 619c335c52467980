// The stack table of call_stacks.hpp: open addressing over mmap'd slots, claimed by
// compare-and-swap of the hash; frames in an mmap'd arena taken by an atomic add.
#include "call_stacks.hpp"

#include "config/chain_spec.hpp"
#include "modules.hpp"
#include "unwind_gate.hpp"

#include <atomic>
#include <cstring>

#include <libunwind.h>
#include <sys/mman.h>

namespace chainalloc::preload::call_stacks {

struct Stack {
    std::atomic<std::uint64_t> hash;  // 0: empty slot; claimed by the first thread to CAS it
    std::atomic<std::uint32_t> id;    // 0 until the frames are in place (release)
    std::uint32_t depth;
    std::uint64_t frames_at;          // index of the first frame in g_frames
    std::uint32_t written;            // generation << 8 | one bit per layer: in that layer's file (claim)
};

namespace {

constexpr std::size_t kSlotBits = 18;                        // 262144 distinct stacks
constexpr std::size_t kSlots = std::size_t{1} << kSlotBits;  // 8 MiB of address space
constexpr std::size_t kFrames = std::size_t{1} << 23;        // 64 MiB of address space, for frames
constexpr std::size_t kMaxProbes = 64;
// Frames unwound beyond the depth asked for: chainalloc's own (entry point, runtime, proxy, log)
// come first and are dropped.
constexpr std::uint32_t kOwnFramesSlack = 16;

Stack* g_slots = nullptr;
std::uintptr_t* g_frames = nullptr;
std::atomic<std::uint64_t> g_frames_used{0};
std::atomic<std::uint32_t> g_next_id{0};
std::uint32_t g_generation = 1;  // changes only in a fork child, while it has one thread

void* map(std::size_t bytes) noexcept {
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? nullptr : m;
}

std::uint64_t hash_of(const std::uintptr_t* f, std::size_t n) noexcept {
    std::uint64_t h = 0x243F6A8885A308D3ull ^ n;
    for (std::size_t i = 0; i < n; ++i) {
        h = (h ^ f[i]) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    return h ? h : 1;
}

// A slot another thread claimed but has not filled yet does not match: the stack may then be
// added twice (two ids, same frames, which the reader merges). Never waiting here matters: the
// claimer may be this very thread, interrupted by a signal handler that allocates.
// Stacks that did not fit (arena full, or no free slot within kMaxProbes): their events carry
// no stack, and the footer says how many (stacks_dropped=N).
std::atomic<std::uint64_t> g_dropped{0};

Captured dropped_stack() noexcept {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return {nullptr, false};
}

Captured find_or_add(const std::uintptr_t* f, std::uint32_t n) noexcept {
    std::uint64_t h = hash_of(f, n);
    for (std::size_t probe = 0; probe < kMaxProbes; ++probe) {
        Stack& s = g_slots[(h + probe) & (kSlots - 1)];
        std::uint64_t k = s.hash.load(std::memory_order_acquire);
        if (k == 0) {
            if (s.hash.compare_exchange_strong(k, h, std::memory_order_acq_rel)) {
                std::uint64_t at = g_frames_used.fetch_add(n, std::memory_order_relaxed);
                if (at + n > kFrames) return dropped_stack();  // arena full: the slot stays unfilled
                std::memcpy(g_frames + at, f, n * sizeof *f);
                s.depth = n;
                s.frames_at = at;
                s.written = 0;
                s.id.store(g_next_id.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_release);
                return {&s, true};
            }
        }
        if (k == h && s.id.load(std::memory_order_acquire) != 0 && s.depth == n &&
            std::memcmp(g_frames + s.frames_at, f, n * sizeof *f) == 0)
            return {&s, false};
    }
    return dropped_stack();
}

}  // namespace

std::uint64_t dropped() noexcept { return g_dropped.load(std::memory_order_relaxed); }

bool init() noexcept {
    if (g_slots) return true;
    auto* slots = static_cast<Stack*>(map(kSlots * sizeof(Stack)));
    auto* frames = static_cast<std::uintptr_t*>(map(kFrames * sizeof(std::uintptr_t)));
    if (!slots || !frames) {
        if (slots) munmap(slots, kSlots * sizeof(Stack));
        if (frames) munmap(frames, kFrames * sizeof(std::uintptr_t));
        return false;
    }
    g_frames = frames;
    g_slots = slots;  // zero pages: every slot empty
    return true;
}

Captured capture(std::uint32_t depth) noexcept {
    if (!g_slots) return {nullptr, false};
    if (depth > config::kMaxStackDepth) depth = config::kMaxStackDepth;
    void* raw[config::kMaxStackDepth + kOwnFramesSlack];
    if (!unwind_gate::enter()) return dropped_stack();  // a fork is under way (unwind_gate.hpp)
    int n = unw_backtrace(raw, static_cast<int>(depth + kOwnFramesSlack));
    unwind_gate::leave();
    int skip = 0;
    while (skip < n && modules::is_ours(reinterpret_cast<std::uintptr_t>(raw[skip]))) ++skip;
    std::uint32_t kept = static_cast<std::uint32_t>(n - skip);
    if (kept > depth) kept = depth;
    if (kept == 0) return {nullptr, false};
    static_assert(sizeof(void*) == sizeof(std::uintptr_t));
    std::uintptr_t pcs[config::kMaxStackDepth];
    std::memcpy(pcs, raw + skip, kept * sizeof *pcs);
    return find_or_add(pcs, kept);
}

std::uint32_t id(const Stack& s) noexcept { return s.id.load(std::memory_order_relaxed); }
std::uint32_t depth(const Stack& s) noexcept { return s.depth; }
const std::uintptr_t* frames(const Stack& s) noexcept { return g_frames + s.frames_at; }

namespace {
// The layers whose file has the stack, in this process's generation.
std::uint32_t layers_of(std::uint32_t written) noexcept { return (written >> 8) == g_generation ? written & 0xff : 0; }
}  // namespace

bool claimed(Stack& s, unsigned layer) noexcept {
    return layers_of(std::atomic_ref<std::uint32_t>(s.written).load(std::memory_order_relaxed)) & (1u << layer);
}

bool claim(Stack& s, unsigned layer) noexcept {
    std::atomic_ref<std::uint32_t> written(s.written);
    std::uint32_t was = written.load(std::memory_order_relaxed);
    for (;;) {
        std::uint32_t bits = layers_of(was);
        if (bits & (1u << layer)) return false;
        if (written.compare_exchange_weak(was, g_generation << 8 | bits | 1u << layer, std::memory_order_relaxed)) return true;
    }
}

void after_fork_child() noexcept { ++g_generation; }

}  // namespace chainalloc::preload::call_stacks
