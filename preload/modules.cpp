// The module table of modules.hpp: filled by dl_iterate_phdr, read without a lock.
#include "modules.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>

#include <elf.h>
#include <link.h>
#include <unistd.h>

namespace chainalloc::preload::modules {
namespace {

Module g_modules[kMaxModules];
std::atomic<bool> g_gone[kMaxModules];
std::atomic<std::size_t> g_count{0};

// Only touched by the thread that holds g_scanning.
bool g_seen[kMaxModules];
std::atomic<unsigned long long> g_adds{0}, g_subs{0};  // the loader's counts at the last scan
struct LoaderCounts {
    unsigned long long adds, subs;
};

std::atomic<bool> g_scanning{false};  // the try-lock: a scan never waits for another
std::atomic<bool> g_wanted{false};    // a scan was skipped: the next allocation tries again

const void* g_ours[4];
std::size_t g_ours_count = 0;
// The modules of g_ours, as ranges: the leading frames of every stack are tested against them.
struct Range {
    std::uintptr_t lo, hi;
};
Range g_our_ranges[4];
std::atomic<std::size_t> g_our_range_count{0};

char g_exe[kMaxModulePath];  // the main program's path (dl_iterate_phdr names it "")

std::size_t align_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }

// The NT_GNU_BUILD_ID note of a loaded module, read from its PT_NOTE segments in memory.
std::uint32_t read_build_id(const dl_phdr_info* info, std::uint8_t* out) noexcept {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_NOTE) continue;
        std::size_t align = ph.p_align == 8 ? 8 : 4;
        auto p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
        const char* end = p + ph.p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            ElfW(Nhdr) note;
            std::memcpy(&note, p, sizeof note);
            const char* name = p + sizeof note;
            const char* desc = name + align_up(note.n_namesz, align);
            const char* next = desc + align_up(note.n_descsz, align);
            if (next > end || next <= p) break;
            if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0 &&
                note.n_descsz <= kMaxBuildId) {
                std::memcpy(out, desc, note.n_descsz);
                return note.n_descsz;
            }
            p = next;
        }
    }
    return 0;
}

void copy_path(char* out, const char* in) noexcept {
    std::size_t n = strnlen(in, kMaxModulePath - 1);
    std::memcpy(out, in, n);
    out[n] = '\0';
}

int scan_one(dl_phdr_info* info, std::size_t, void*) noexcept {
    g_adds.store(info->dlpi_adds, std::memory_order_relaxed);
    g_subs.store(info->dlpi_subs, std::memory_order_relaxed);
    std::uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (start < lo) lo = start;
        if (start + ph.p_memsz > hi) hi = start + ph.p_memsz;
    }
    if (lo >= hi) return 0;
    const char* path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : g_exe;
    std::size_t n = g_count.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
        const Module& m = g_modules[i];
        if (!g_gone[i].load(std::memory_order_relaxed) && m.base == info->dlpi_addr && m.lo == lo && m.hi == hi &&
            std::strncmp(m.path, path, kMaxModulePath - 1) == 0) {
            g_seen[i] = true;
            return 0;
        }
    }
    if (n == kMaxModules) return 0;
    Module& m = g_modules[n];
    m.base = info->dlpi_addr;
    m.lo = lo;
    m.hi = hi;
    m.build_id_len = read_build_id(info, m.build_id);
    copy_path(m.path, path);
    m.ours = false;
    for (std::size_t k = 0; k < g_ours_count; ++k) {
        auto a = reinterpret_cast<std::uintptr_t>(g_ours[k]);
        if (a >= lo && a < hi) m.ours = true;
    }
    if (m.ours) {
        std::size_t r = g_our_range_count.load(std::memory_order_relaxed);
        if (r < 4) {
            g_our_ranges[r] = {lo, hi};
            g_our_range_count.store(r + 1, std::memory_order_release);
        }
    }
    g_gone[n].store(false, std::memory_order_relaxed);
    g_seen[n] = true;
    g_count.store(n + 1, std::memory_order_release);  // publishes the entry
    return 0;
}

// The loader's counts only: the first object's callback stops the walk.
int counts_only(dl_phdr_info* info, std::size_t, void* out) noexcept {
    *static_cast<LoaderCounts*>(out) = {info->dlpi_adds, info->dlpi_subs};
    return 1;
}

// Under g_scanning. Modules not met again were unloaded.
void scan_locked() noexcept {
    std::size_t before = g_count.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < before; ++i) g_seen[i] = false;
    dl_iterate_phdr(scan_one, nullptr);
    for (std::size_t i = 0; i < before; ++i)
        if (!g_seen[i]) g_gone[i].store(true, std::memory_order_relaxed);
}

bool g_initialized = false;  // init() ran: the main program's path is known

bool try_scan() noexcept {
    if (!g_initialized) return false;
    bool expected = false;
    if (!g_scanning.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        g_wanted.store(true, std::memory_order_relaxed);
        return false;
    }
    g_wanted.store(false, std::memory_order_relaxed);
    scan_locked();
    g_scanning.store(false, std::memory_order_release);
    return true;
}

bool known(std::uintptr_t pc) noexcept {
    std::size_t n = g_count.load(std::memory_order_acquire);
    for (std::size_t i = n; i-- > 0;)
        if (pc >= g_modules[i].lo && pc < g_modules[i].hi && !g_gone[i].load(std::memory_order_relaxed)) return true;
    return false;
}

}  // namespace

void init(const void* const* ours, std::size_t n) noexcept {
    if (g_count.load() != 0) return;
    g_ours_count = n < 4 ? n : 4;
    for (std::size_t i = 0; i < g_ours_count; ++i) g_ours[i] = ours[i];
    ssize_t len = readlink("/proc/self/exe", g_exe, sizeof g_exe - 1);
    g_exe[len > 0 ? len : 0] = '\0';
    if (len <= 0) copy_path(g_exe, program_invocation_name);  // no /proc: argv[0] is better than nothing
    g_initialized = true;
    try_scan();
}

std::size_t count() noexcept { return g_count.load(std::memory_order_acquire); }
const Module& at(std::size_t i) noexcept { return g_modules[i]; }

bool is_ours(std::uintptr_t pc) noexcept {
    std::size_t n = g_our_range_count.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i)
        if (pc >= g_our_ranges[i].lo && pc < g_our_ranges[i].hi) return true;
    return false;
}

void note_stack(const std::uintptr_t* pcs, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        if (!known(pcs[i])) {
            try_scan();
            return;
        }
    }
    // Every address is known, but a module may have been unloaded and another loaded in its
    // place: the loader's counters tell.
    LoaderCounts now{};
    dl_iterate_phdr(counts_only, &now);
    if (now.adds != g_adds.load(std::memory_order_relaxed) || now.subs != g_subs.load(std::memory_order_relaxed))
        try_scan();
}

void rescan_if_wanted() noexcept {
    if (g_wanted.load(std::memory_order_relaxed)) [[unlikely]]
        try_scan();
}

void rescan() noexcept { try_scan(); }

void after_fork_child() noexcept { g_scanning.store(false, std::memory_order_relaxed); }

}  // namespace chainalloc::preload::modules
