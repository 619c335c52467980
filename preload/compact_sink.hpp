// The compact log's sink (format version 2, compact_format.hpp): each thread encodes its
// records into chunks of its own (chunk_file.hpp), so writing takes no lock at all.
//
// It is an spdlog sink like the text one (text_sink.hpp): the log's spdlog logger writes the
// footer and any other text through it, as text records. Events, modules and stacks do not
// pass through spdlog's log_msg: they are structured, and spdlog's dispatch costs more than
// writing the record. Measured on this machine (a 7-byte payload, medians of 3 rounds of 20M):
// a direct call 2-4 ns, sink->log(log_msg) 17-24 ns, logger.log 52-58 ns, where a whole event
// costs about 80 ns (cxx: 0.57 s of CPU over 7.4M events): spdlog's logger would add 70%.
#pragma once

#include "chunk_file.hpp"
#include "log_plugin.hpp"
#include "modules.hpp"

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <cstddef>
#include <cstdint>

namespace chainalloc::preload {

class CompactSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
    /// `slot`: which of the calling thread's chunk states this sink uses (its proxy layer).
    CompactSink(ChunkFile& file, unsigned slot, LogClock clock) noexcept;

    void event(const LogEvent& e, std::uint32_t stack) noexcept;
    void module(std::size_t index, const modules::Module& m) noexcept;
    /// `t`: the time (now()) read before this thread claimed the stack (call_stacks::claim).
    /// Another thread that finds the stack claimed writes its event without the stack record,
    /// at once; stamped later, the record could come after that event in the reader's merge.
    void stack(std::uint32_t id, std::size_t modules, const std::uintptr_t* frames, std::uint32_t depth,
               std::uint64_t t) noexcept;
    std::uint64_t now() const noexcept { return clock_.since(); }
    void close() noexcept { file_.close(); }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;  // a text record
    void flush_() override {}

public:
    struct Thread;  // a thread's chunk and delta state in this log (compact_sink.cpp)

private:
    template <std::size_t Max, class Fill>
    void put(std::uint32_t tid, std::uint64_t now, Fill&& fill) noexcept;
    bool next_chunk(Thread& th, std::size_t record) noexcept;

    ChunkFile& file_;
    unsigned slot_;
    std::uint32_t generation_;  // tells this sink's chunk states from an earlier file's
    LogClock clock_;  // records' times count from it
};

}  // namespace chainalloc::preload
