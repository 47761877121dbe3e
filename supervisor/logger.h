// The daemon's own log: one line per event, "2026-11-22T10:00:00.123Z info: message".
// To stderr in the foreground, to supervisor.log when daemonized (reopened on SIGUSR1).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "log_file.h"

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
  // Writes to a file (0640, folder created 0750), rotated like a job log (at 10 MiB, 5
  // backups). Returns "" or the reason.
  std::string use_file(const std::string& path);
  // Reopens the file (after logrotate moved it). Returns "" or the reason.
  std::string reopen();

  void log(Level level, std::string_view message);
  void info(std::string_view m) { log(Level::info, m); }
  void warn(std::string_view m) { log(Level::warn, m); }
  void error(std::string_view m) { log(Level::error, m); }

 private:
  std::unique_ptr<LogFile> file_;  // null: stderr
};

// An RFC 3339 UTC time with milliseconds, e.g. "2026-11-22T10:00:00.123Z".
std::string rfc3339_now();

}  // namespace vigil
