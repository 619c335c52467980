#include "chunk_file.hpp"

#include "compact_format.hpp"
#include "output_file.hpp"
#include "diagnostics.hpp"
#include "write_all.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

namespace chainalloc::preload {

bool ChunkFile::open(int fd, const char* path, const char* header, std::size_t len) noexcept {
    void* m = MAP_FAILED;
    std::size_t limit = kMaxBytes;
    for (; m == MAP_FAILED && limit >= kLeastBytes; limit /= 2)
        m = mmap(nullptr, limit, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (m == MAP_FAILED) return false;
    limit_ = limit * 2;  // the loop halved it once more after the mapping that worked
    fd_ = fd;
    path_ = path;
    base_ = static_cast<char*>(m);
    std::size_t body = (len + logformat::kPage) & ~(logformat::kPage - 1);  // at least one NUL after the line
    reserved_.store(body);
    if (grow_to(body, false)) std::memcpy(base_, header, len);  // else the disk is full: said, and stopped
    return true;
}

// The disk is full (or the file may grow no more): chunks already reserved stay; new ones are
// refused, so each thread stops at the end of its chunk.
bool ChunkFile::stop(int error) noexcept {
    if (stopped_.exchange(true)) return false;
    cut();  // the blocks reserved ahead go back to the full disk
    char line[kPathCap + 160];
    int n = std::snprintf(line, sizeof line, "chainalloc: the log '%s' cannot grow (%s); logging stops here\n", path_,
                          std::strerror(error));
    diagnostics::say(line, n);
    return false;
}

// The file grows by half its size, from 64 KiB to 8 MiB at a time: a process that execs (and
// never cuts its file) leaves at most that much zeroed tail, and a small one leaves little.
std::uint64_t ChunkFile::step(std::uint64_t grown) noexcept {
    std::uint64_t s = grown / 2 < kMinStep ? kMinStep : grown / 2 > kMaxStep ? kMaxStep : grown / 2;
    return s & ~std::uint64_t{logformat::kPage - 1};
}

// One thread grows the file at a time; the others wait only for bytes they need. Growing starts
// half a step before the end, so in a steady run nobody waits; that early growth is a wish
// (`ahead`): when the disk cannot give it, nothing stops until a chunk really needs the room.
bool ChunkFile::grow_to(std::uint64_t end, bool ahead) noexcept {
    for (;;) {
        std::uint64_t grown = grown_.load();
        if (grown >= end) return true;
        if (stopped()) return false;
        if (!growing_.exchange(true)) {
            grown = grown_.load();
            int error = 0;
            if (grown < end) {
                // A step ahead; on a nearly full disk, just what is needed.
                std::uint64_t target = end + step(grown);
                error = posix_fallocate(fd_, static_cast<off_t>(grown), static_cast<off_t>(target - grown));
                if (error == ENOSPC) {
                    target = end;
                    error = posix_fallocate(fd_, static_cast<off_t>(grown), static_cast<off_t>(target - grown));
                }
                if (!error) grown_.store(target);
            }
            growing_.store(false);
            if (error) return ahead ? false : stop(error);
        } else {
            sched_yield();
        }
    }
}

char* ChunkFile::reserve(std::size_t bytes) noexcept {
    if (stopped()) return nullptr;
    std::uint64_t at = reserved_.fetch_add(bytes);
    std::uint64_t end = at + bytes;
    if (end > limit_) {
        stop(EFBIG);
        return nullptr;
    }
    if (!grow_to(end, false)) return nullptr;
    std::uint64_t grown = grown_.load();
    if (end + step(grown) / 2 > grown && !growing_.load(std::memory_order_relaxed)) grow_to(end + step(grown) / 2, true);
    // The chunk's pages, mapped in one call rather than one fault each: page faults on the
    // shared file mapping were most of the log's system time. Best effort: a kernel before
    // 5.14 says EINVAL, and the stores then fault the pages in as before.
    madvise(base_ + at, bytes, MADV_POPULATE_WRITE);
    return base_ + at;
}

void ChunkFile::release(char* chunk, std::size_t bytes) noexcept { madvise(chunk, bytes, MADV_DONTNEED); }

// Cutting the file while other threads may still write (threads running during exit): a thread
// whose reservation came before `reserved_` is read below wrote under that end, so it is safe.
// One that reserves after it must see grown_ lowered first (all operations here and in
// reserve are sequentially consistent), so it waits in grow_to until the cut is done and then
// grows the file again. Hence: lower grown_, hold the growing flag, read reserved_, cut.
void ChunkFile::cut() noexcept {
    std::uint64_t was = grown_.exchange(0);
    while (growing_.exchange(true)) sched_yield();
    std::uint64_t end = reserved_.load();
    if (end < was && ftruncate(fd_, static_cast<off_t>(end)) == 0) was = end;
    grown_.store(was);
    growing_.store(false);
}

void ChunkFile::close() noexcept {
    if (base_) cut();
}

}  // namespace chainalloc::preload
