// The daemon's own log.
#include "logger.h"

#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "fsutil.h"

namespace vigil {

std::string rfc3339_now() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::string s = LineStamper::prefix(ts);
  s.pop_back();  // the prefix ends with the space that separates it from the line
  return s;
}

namespace {
constexpr LogPolicy kDaemonLogPolicy{10 * 1024 * 1024, 5, 0640};
}  // namespace

Logger::~Logger() = default;

void Logger::use_stderr() { file_.reset(); }

std::string Logger::use_file(const std::string& path) {
  auto file = std::make_unique<LogFile>(path, kDaemonLogPolicy);
  if (auto err = file->reopen(); !err.empty()) return err;
  file_ = std::move(file);
  return {};
}

std::string Logger::reopen() {
  if (!file_) return {};
  return file_->reopen();
}

void Logger::log(Level level, std::string_view message) {
  static constexpr std::string_view names[] = {"debug", "info", "warn", "error"};
  std::string line = rfc3339_now();
  line += ' ';
  line += names[static_cast<int>(level)];
  line += ": ";
  line += message;
  line += '\n';
  if (file_) {
    file_->write(line);  // a failure is counted and reported in the file once it works
    return;
  }
  // One write per line, so lines from a crash or a concurrent writer never interleave.
  ssize_t n = ::write(2, line.data(), line.size());
  (void)n;  // stderr that cannot be written has nowhere to report that
}

}  // namespace vigil
