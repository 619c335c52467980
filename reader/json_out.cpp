#include "json_out.hpp"

#include <cerrno>

namespace logscan {

JsonOut& JsonOut::str(std::string_view bytes) {
  buf_.push_back('"');
  for (char ch : bytes) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      buf_.push_back(ch);
    } else {
      static const char hex[] = "0123456789abcdef";
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_.append(esc, 6);
    }
  }
  buf_.push_back('"');
  return maybe_flush();
}

bool JsonOut::flush() {
  const char* p = buf_.data();
  std::size_t n = buf_.size();
  while (n > 0 && !failed_) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      failed_ = true;
      break;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  buf_.clear();
  return !failed_;
}

}  // namespace logscan
