// The daemon's own log: one line per event, "2026-11-22T10:00:00.123Z info: message".
// To stderr in the foreground, to supervisor.log when daemonized (reopened on SIGUSR1).
#pragma once

#include <string>
#include <string_view>

namespace vigil {

class Logger {
 public:
  enum class Level { debug, info, warn, error };

  Logger() = default;
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // Writes to stderr (the default).
  void use_stderr();
  // Writes to a file (0640, folder created 0750). Returns "" or the reason.
  std::string use_file(const std::string& path);
  // Reopens the file (after logrotate moved it). Returns "" or the reason.
  std::string reopen();

  void log(Level level, std::string_view message);
  void info(std::string_view m) { log(Level::info, m); }
  void warn(std::string_view m) { log(Level::warn, m); }
  void error(std::string_view m) { log(Level::error, m); }

 private:
  int fd_ = 2;
  std::string path_;
};

// An RFC 3339 UTC time with milliseconds, e.g. "2026-11-22T10:00:00.123Z".
std::string rfc3339_now();

}  // namespace vigil
