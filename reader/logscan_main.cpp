// chainalloc-logscan: the compiled pass of `chainalloc log` over one v1 text log. Prints the
// scan as one JSON object on stdout; parse.py (scan_log) runs it and builds its Scan from that.
//
//   chainalloc-logscan [options] FILE|-
//     --offset N        the lines start N bytes into FILE (after the header, which parse.py reads)
//     --compact         a compact log (version 2): records, not lines; --offset is then the
//                       header's length (from stdin: the bytes after the header)
//     --packed          a packed log (version 3): its body, decompressed, from FILE or stdin
//     --pack            write the log's records packed (version 3's body) on stdout, not a scan
//     --layers N        layers named by the header       --sample N   the header's sample=
//     --weighted        sampling by bytes                --timeline   keep the points for plot
//     --progress NAME   show the progress line for NAME on stderr, first after
//     --progress-delay S seconds (parse.Progress's rules decide whether at all)
// Exit 0; 2 with one line on stderr (unreadable file, bad option); 3 when the log holds
// numbers beyond 64 bits (ScanSink::exact), which only the Python pass adds up exactly.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "json_out.hpp"
#include "progress.hpp"
#include "scan.hpp"
#include "compact_source.hpp"
#include "pack.hpp"
#include "packed_source.hpp"
#include "text_source.hpp"

namespace {

int usage(const char* why) {
  std::fprintf(stderr, "chainalloc-logscan: %s\n", why);
  return 2;
}

bool number(const char* s, long long& out) {
  char* end;
  errno = 0;
  out = std::strtoll(s, &end, 10);
  return errno == 0 && *s && !*end && out >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  logscan::ScanConfig cfg;
  logscan::TextSourceOptions src;
  bool compact = false, packed = false, pack = false;
  const char* path = nullptr;
  const char* progress_name = nullptr;
  double progress_delay = 1.0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    long long v = 0;
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--weighted") cfg.weighted = true;
    else if (a == "--compact") compact = true;
    else if (a == "--packed") packed = true;
    else if (a == "--pack") pack = true;
    else if (a == "--timeline") cfg.timeline = true;
    else if (a == "--progress") {
      if (!(progress_name = value())) return usage("--progress needs a name");
    } else if (a == "--progress-delay") {
      const char* s = value();
      if (!s) return usage("--progress-delay needs seconds");
      progress_delay = std::atof(s);
    } else if (a == "--offset" || a == "--layers" || a == "--sample") {
      const char* s = value();
      if (!s || !number(s, v)) return usage((a + " needs a number").c_str());
      if (a == "--offset") src.offset = static_cast<std::uint64_t>(v);
      else if (a == "--layers") src.layers = cfg.layers = static_cast<unsigned>(v);
      else cfg.sample = v;
    } else if (!path && (a == "-" || a[0] != '-')) {
      path = argv[i];
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  if (!path) return usage("no log given");
  if (cfg.weighted && cfg.sample <= 1) cfg.weighted = false;
  int fd = 0;
  if (std::string(path) != "-") {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return usage((std::string(path) + ": " + std::strerror(errno)).c_str());
  }
  src.fd = fd;
  std::optional<logscan::Progress> progress;
  if (progress_name) {
    struct stat st{};
    std::uint64_t total = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
    progress.emplace(progress_name, total, progress_delay);
    src.progress = &*progress;
  }
  std::unique_ptr<logscan::ScanSink> scan;
  std::unique_ptr<logscan::PackSink> packer;
  logscan::RecordSink* sink;
  if (pack) sink = (packer = logscan::make_pack(1)).get();
  else sink = (scan = logscan::make_scan(cfg)).get();
  std::string error;
  bool ok;
  if (compact) {
    logscan::CompactSourceOptions c{fd, src.offset, fd == 0, src.layers, src.progress};
    ok = logscan::read_compact_log(c, *sink, error);
  } else if (packed) {   // a stream: from a file, it starts after the header
    ok = (!src.offset || ::lseek(fd, static_cast<off_t>(src.offset), SEEK_SET) >= 0) &&
         logscan::read_packed_log(fd, src.layers, src.progress, *sink, error);
    if (!ok && error.empty()) error = std::strerror(errno);
  } else {
    ok = logscan::read_text_log(src, *sink, error);
  }
  if (progress) progress->finish();
  if (ok && packer) ok = packer->ok(error);
  if (!ok) return usage((std::string(path) + ": " + error).c_str());
  if (packer) return 0;
  if (!scan->exact()) return 3;   // logscan.py reads such a log with its Python pass
  logscan::JsonOut out(1);
  scan->write_json(out);
  return out.flush() ? 0 : 2;
}
