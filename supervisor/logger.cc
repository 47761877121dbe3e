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
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1'000'000);
  return buf;
}

Logger::~Logger() {
  if (fd_ > 2) ::close(fd_);
}

void Logger::use_stderr() {
  if (fd_ > 2) ::close(fd_);
  fd_ = 2;
  path_.clear();
}

std::string Logger::use_file(const std::string& path) {
  int fd = fs::open_append(path, 0640);
  if (fd < 0) return "cannot open log " + path + ": " + fs::errno_text(-fd);
  if (fd_ > 2) ::close(fd_);
  fd_ = fd;
  path_ = path;
  return {};
}

std::string Logger::reopen() {
  if (path_.empty()) return {};
  return use_file(path_);
}

void Logger::log(Level level, std::string_view message) {
  static constexpr std::string_view names[] = {"debug", "info", "warn", "error"};
  std::string line = rfc3339_now();
  line += ' ';
  line += names[static_cast<int>(level)];
  line += ": ";
  line += message;
  line += '\n';
  // One write per line, so lines from a crash or a concurrent writer never interleave.
  ssize_t n = ::write(fd_, line.data(), line.size());
  (void)n;  // a log that cannot be written has nowhere to report that
}

}  // namespace vigil
