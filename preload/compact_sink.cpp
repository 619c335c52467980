#include "compact_sink.hpp"

#include "compact_format.hpp"
#include "config/chain_spec.hpp"

#include <atomic>
#include <ctime>

#include <unistd.h>

namespace chainalloc::preload {
namespace {

using logformat::Encoder;
using logformat::Op;

// A thread's first chunk is a page (a thread that allocates twice costs the file 4 KiB); its
// chunks then double up to 64 KiB, so a busy thread reserves once every few thousand records.
constexpr std::uint32_t kFirstChunk = 4096, kLastChunk = 64 * 1024;

std::atomic<std::uint32_t> g_generations{0};


}  // namespace

// A thread's place in one log: its chunk and the state its deltas count from. Thread-local in
// this plugin (the dynamic TLS block is allocated on a thread's first record, inside the
// caller's LoggerScope: glibc's memory, unlogged).
struct CompactSink::Thread {
    std::uint32_t generation;  // the sink this belongs to; another one: start afresh
    std::uint32_t tid;
    char* chunk;
    std::uint32_t size, used;
    std::uint64_t prev_t;
    std::uintptr_t prev_ptr;
};
namespace {
thread_local CompactSink::Thread t_chunks[config::kMaxLayers];
}  // namespace

CompactSink::CompactSink(ChunkFile& file, unsigned slot, LogClock clock) noexcept
    : file_(file), slot_(slot), generation_(g_generations.fetch_add(1) + 1), clock_(clock) {}

// A new chunk with room for a record of up to `record` bytes, its header holding the thread's
// state before that record (so the chunk decodes on its own). False: logging has stopped.
bool CompactSink::next_chunk(Thread& th, std::size_t record) noexcept {
    if (th.chunk) ChunkFile::release(th.chunk, th.size);
    std::uint32_t size = th.size ? th.size * 2 : kFirstChunk;
    if (size > kLastChunk) size = kLastChunk;
    while (size < record + sizeof(logformat::ChunkHeader)) size *= 2;
    th.chunk = file_.reserve(size);
    if (!th.chunk) return false;  // the disk is full
    logformat::ChunkHeader header{0, size, th.tid, 0, th.prev_t, th.prev_ptr};
    std::memcpy(th.chunk, &header, sizeof header);
    std::atomic_ref(*reinterpret_cast<std::uint32_t*>(th.chunk)).store(logformat::kChunkMagic, std::memory_order_release);
    th.size = size;
    th.used = sizeof header;
    return true;
}

// Encodes one record in place, in the thread's chunk, against the thread's state: `fill`
// writes the body and returns the tag byte, which is stored last, so a reader (or a process
// killed meanwhile) sees a whole record or none. The chunk must have room for the largest
// record of its kind (Max): encoding on the stack and copying read back bytes just stored one
// by one, a store-forwarding stall that was 40% of the sink's time.
template <std::size_t Max, class Fill>
void CompactSink::put(std::uint32_t tid, std::uint64_t now, Fill&& fill) noexcept {
    Thread& th = t_chunks[slot_];
    if (th.generation != generation_) th = {generation_, tid ? tid : static_cast<std::uint32_t>(gettid()), nullptr, 0, 0, now, 0};
    if ((!th.chunk || th.used + Max > th.size) && !next_chunk(th, Max)) return;
    auto* at = reinterpret_cast<std::uint8_t*>(th.chunk + th.used);
    // The state in locals while the bytes are stored: a byte store may alias anything, and the
    // compiler would load th's fields again after each one.
    std::uint64_t prev_t = th.prev_t;
    std::uintptr_t prev_ptr = th.prev_ptr;
    Encoder e{at + 1};
    std::uint8_t tag = fill(e, now > prev_t ? now - prev_t : 0, prev_ptr);
    th.prev_t = now > prev_t ? now : prev_t;
    th.prev_ptr = prev_ptr;
    std::atomic_ref(*at).store(tag, std::memory_order_release);
    th.used += static_cast<std::uint32_t>(1 + e.len);
}

void CompactSink::event(const LogEvent& ev, std::uint32_t stack) noexcept {
    put<logformat::kMaxRecord>(ev.tid, now(), [&](Encoder& e, std::uint64_t dt, std::uintptr_t& prev) {
        Op op = ev.op == 'm' ? Op::malloc : ev.op == 'c' ? Op::calloc : ev.op == 'a' ? Op::aligned
              : ev.op == 'r' ? Op::realloc : Op::free;
        e.var(dt);
        if (op == Op::aligned) e.var(ev.align);
        if (op == Op::realloc) e.pointer(ev.old, prev);
        if (op != Op::free) e.var(ev.size);
        e.pointer(ev.ptr, prev);
        if (stack) e.var(stack);
        return logformat::tag(op, ev.layer == LogEvent::kFailed ? logformat::kFailedLayer : ev.layer, stack != 0);
    });
}

void CompactSink::module(std::size_t index, const modules::Module& m) noexcept {
    put<2 * modules::kMaxModulePath>(0, now(), [&](Encoder& e, std::uint64_t dt, std::uintptr_t&) {
        e.var(dt);
        e.var(static_cast<std::uint64_t>(logformat::Meta::module));
        e.var(index);
        e.var(m.base);
        e.var(m.lo);
        e.var(m.hi);
        e.bytes(m.build_id, m.build_id_len);
        e.bytes(m.path, strnlen(m.path, sizeof m.path));
        return logformat::tag(Op::meta, 0, false);
    });
}

void CompactSink::stack(std::uint32_t id, std::size_t modules, const std::uintptr_t* frames, std::uint32_t depth,
                        std::uint64_t t) noexcept {
    put<64 + config::kMaxStackDepth * 10>(0, t, [&](Encoder& e, std::uint64_t dt, std::uintptr_t&) {
        e.var(dt);
        e.var(static_cast<std::uint64_t>(logformat::Meta::stack));
        e.var(id);
        e.var(modules);
        e.var(depth);
        std::uintptr_t prev = 0;  // frames of one stack lie close together: deltas
        for (std::uint32_t i = 0; i < depth; ++i) {
            e.var(logformat::zigzag(static_cast<std::int64_t>(frames[i] - prev)));
            prev = frames[i];
        }
        return logformat::tag(Op::meta, 0, false);
    });
}

void CompactSink::sink_it_(const spdlog::details::log_msg& msg) {
    constexpr std::size_t kMaxText = 2048;
    std::size_t n = msg.payload.size() < kMaxText ? msg.payload.size() : kMaxText;
    if (n && msg.payload[n - 1] == '\n') --n;
    put<kMaxText + 32>(0, now(), [&](Encoder& e, std::uint64_t dt, std::uintptr_t&) {
        e.var(dt);
        e.var(static_cast<std::uint64_t>(logformat::Meta::text));
        e.bytes(msg.payload.data(), n);
        return logformat::tag(Op::meta, 0, false);
    });
}

}  // namespace chainalloc::preload
