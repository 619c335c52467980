// The compact log's file (compact_format.hpp): one MAP_SHARED mapping of the whole file, handed
// out in page-aligned chunks by one atomic add. Each thread fills its own chunk, so no lock is
// shared by all threads; the bytes are in the page cache the moment they are stored, so exec,
// abort and SIGKILL lose nothing that was written.
//
// The mapping reserves address space for the largest file up front (1 TiB; less where the
// address space is limited: RLIMIT_AS, valgrind); only the part of the file that
// exists may be touched (a store past the end of the file is SIGBUS). The file grows ahead of
// the writers, its disk blocks reserved (posix_fallocate: a store into a hole that a full disk
// cannot fill is SIGBUS too) by half its size at a time: one thread at a time grows it, the others go on writing below the
// old end and wait only when they outrun it. When the disk is full, logging stops with one line
// on stderr and the program runs on.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace chainalloc::preload {

class ChunkFile {
public:
    // The mapping's size: address space, not memory. Where kMaxBytes cannot be reserved, half
    // of it, and so on down to kLeastBytes; the file may grow no larger than what was reserved.
    static constexpr std::size_t kMaxBytes = std::size_t{1} << 40, kLeastBytes = std::size_t{64} << 20;
    static constexpr std::size_t kMinStep = std::size_t{64} << 10, kMaxStep = std::size_t{8} << 20;

    /// Maps `fd` (a regular file, empty) and writes `header` padded to a page. False: the file
    /// cannot be mapped; nothing was written and the caller logs as text instead. A disk too
    /// full for the header stops the log at once (one line on stderr).
    bool open(int fd, const char* path, const char* header, std::size_t len) noexcept;

    /// `bytes` (a multiple of the page) of zeroed file, mapped, or nullptr once logging stopped.
    char* reserve(std::size_t bytes) noexcept;

    /// Normal exit: the file is cut to the chunks reserved (the zeroed tail of the last growth
    /// goes). Threads still writing are safe: see the comment in the implementation.
    void close() noexcept;

    /// A finished chunk: its pages leave the process's RSS (the data stays in the file).
    static void release(char* chunk, std::size_t bytes) noexcept;

    bool stopped() const noexcept { return stopped_.load(std::memory_order_relaxed); }

private:
    static std::uint64_t step(std::uint64_t grown) noexcept;
    bool grow_to(std::uint64_t end, bool ahead) noexcept;
    bool stop(int error) noexcept;
    void cut() noexcept;

    int fd_ = -1;
    char* base_ = nullptr;
    std::size_t limit_ = 0;  // bytes mapped
    const char* path_ = "";
    std::atomic<std::uint64_t> reserved_{0};  // next free offset
    std::atomic<std::uint64_t> grown_{0};     // bytes of file with disk blocks
    std::atomic<bool> growing_{false};        // one thread grows the file at a time
    std::atomic<bool> stopped_{false};
};

}  // namespace chainalloc::preload
