// The text log's sink: lines (format version 1, scripts/LOG-FORMAT.md) into a shared mapping
// of the file, under the log's one lock (event_log.cpp). Part of the event log plugin.
#pragma once

#include "config/chain_spec.hpp"
#include "diagnostics.hpp"
#include "write_all.hpp"

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace chainalloc::preload {

// spdlog's file sinks open by name (fopen) and cannot promise O_EXCL|O_NOFOLLOW|O_CLOEXEC, and
// they buffer in the process, where an exec() or a crash loses the tail. This sink takes a
// descriptor we opened ourselves and, for a regular file, writes each line straight into a
// MAP_SHARED window of the file: the bytes are in the page cache the moment they are copied,
// so they survive exec, abort and SIGKILL alike. The file grows a window at a time and is cut
// to its exact length at exit; a process that never got there leaves NUL bytes after its last
// line, which the reader ignores. Anything that cannot be mapped (stderr, a pipe, /dev/null)
// gets an ordinary 64 KiB buffer and write(). spdlog's pattern formatter ("%v") still makes
// each line; lines stay far below its 250-byte inline buffer, so an event allocates nothing.
//
// A window's disk blocks are reserved (posix_fallocate) before it is mapped: a store into a
// hole that the filesystem cannot fill is SIGBUS, so a full disk would kill the program. When
// the reservation fails, logging stops with one line on stderr and the program runs on.
class TextSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
    TextSink(int fd, const char* path) : fd_(fd) {
        struct stat st;
        mapped_ = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        std::snprintf(path_, sizeof path_, "%s", path);
    }

    /// Normal exit: the file gets its exact length.
    void close_file() {
        flush_();
        if (mapped_ && window_) {
            munmap(window_, kWindow);
            window_ = nullptr;
            if (ftruncate(fd_, static_cast<off_t>(written_)) != 0) {
                // The NUL tail stays; the reader ignores it.
            }
            // Late lines (after the footer) are appended with write(), after the last byte.
            lseek(fd_, static_cast<off_t>(written_), SEEK_SET);
            mapped_ = false;
        }
        through_ = true;
    }

    /// In a fork child: let go of the parent's file without writing a byte to it. The window
    /// stays mapped: when the fork came from a signal handler that interrupted this very sink,
    /// the interrupted copy of the line may still land there (the same bytes at the same place
    /// as in the parent); unmapped, it would fault.
    void abandon() {
        window_ = nullptr;
        used_ = 0;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        if (stopped_) return;
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        if (mapped_ && !through_ && put_mapped(line.data(), line.size())) return;
        if (!stopped_) put_buffered(line.data(), line.size());
    }
    void flush_() override {
        write_all(fd_, buffer_, used_);
        used_ = 0;
    }

private:
    static constexpr std::size_t kWindow = 1 << 20;

    bool put_mapped(const char* p, std::size_t n) {
        while (n) {
            if (!window_ || window_used_ == kWindow) {
                if (!next_window()) return false;
            }
            std::size_t take = std::min(n, kWindow - window_used_);
            std::memcpy(window_ + window_used_, p, take);
            window_used_ += take;
            written_ += take;
            p += take;
            n -= take;
        }
        return true;
    }

    // Grows the file by a window, its blocks reserved, and maps it. A file that can't be mapped
    // (mmap refused) falls back to write(); one that can't grow stops the log.
    bool next_window() {
        if (window_) munmap(window_, kWindow);
        window_ = nullptr;
        off_t offset = static_cast<off_t>(written_);
        if (int error = posix_fallocate(fd_, offset, static_cast<off_t>(kWindow))) return stop(error);
        void* w = mmap(nullptr, kWindow, PROT_WRITE, MAP_SHARED, fd_, offset);
        if (w == MAP_FAILED) return give_up();
        window_ = static_cast<char*>(w);
        window_used_ = 0;
        return true;
    }

    bool give_up() {
        mapped_ = false;
        if (ftruncate(fd_, static_cast<off_t>(written_)) != 0) {
        }
        lseek(fd_, static_cast<off_t>(written_), SEEK_SET);
        return false;
    }

    // The disk is full (or the file may grow no more): what was written stays, exactly cut.
    bool stop(int error) {
        give_up();
        stopped_ = true;
        char line[sizeof path_ + 160];
        int n = std::snprintf(line, sizeof line, "chainalloc: the log '%s' cannot grow (%s); logging stops here\n",
                              path_, std::strerror(error));
        diagnostics::say(line, n);
        return false;
    }

    void put_buffered(const char* p, std::size_t n) {
        if (used_ + n > sizeof buffer_) flush_();
        if (n > sizeof buffer_) {
            write_all(fd_, p, n);
        } else {
            std::memcpy(buffer_ + used_, p, n);
            used_ += n;
        }
        if (through_) flush_();
    }

    int fd_;
    char path_[config::kMaxPath + 80];
    bool stopped_ = false;  // the file could not grow: nothing more is written
    bool mapped_ = false;
    bool through_ = false;  // after the footer: every line goes out at once
    char* window_ = nullptr;
    std::size_t window_used_ = 0;
    std::size_t written_ = 0;  // bytes of the file that hold lines (mapped mode)
    std::size_t used_ = 0;
    char buffer_[64 * 1024];
};

}  // namespace chainalloc::preload
