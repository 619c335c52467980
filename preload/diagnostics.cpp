#include "diagnostics.hpp"

#include "write_all.hpp"

#include <spdlog/details/null_mutex.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <memory>

#include <unistd.h>

namespace chainalloc::preload::diagnostics {
namespace {

// stderr by write(2), unbuffered and without stdio's lock: a line may come from inside malloc.
class StderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        write_all(STDERR_FILENO, line.data(), line.size());
    }
    void flush_() override {}
};

spdlog::logger* g_logger = nullptr;  // never deleted: in use until the process is gone

}  // namespace

void init() noexcept {
    if (g_logger) return;
    try {
        auto sink = std::make_shared<StderrSink>();
        sink->set_pattern("%v");
        g_logger = new spdlog::logger("chainalloc-diagnostics", std::move(sink));
    } catch (...) {
        g_logger = nullptr;
    }
}

void say(const char* text, int n) noexcept {
    if (n <= 0) return;
    auto len = static_cast<std::size_t>(n);
    if (len && text[len - 1] == '\n') --len;  // the pattern's end of line puts it back
    try {
        if (g_logger) return g_logger->warn(spdlog::string_view_t(text, len));
    } catch (...) {
    }
    write_all(STDERR_FILENO, text, len);
    write_all(STDERR_FILENO, "\n", 1);
}

}  // namespace chainalloc::preload::diagnostics
