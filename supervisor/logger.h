// The daemon's own log: one line per event, "2026-11-22T10:00:00.123Z info: message".
// To stderr in the foreground, to supervisor.log when daemonized (reopened on SIGUSR1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "log_file.h"

namespace vigil {

class LogWriter;

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
  // Reopens the file (after logrotate moved it). Returns "" or the reason. While attached,
  // the writer's reopen_all() reopens it instead.
  std::string reopen();
  // While the daemon runs, its log file is written by the log writer's thread like a job
  // log, so no line it logs makes the event loop wait on the disk. Lines that would pile
  // up beyond a bound (the disk does not keep up) are counted and reported once it does.
  // detach() before the writer goes: lines are then written directly again.
  void attach(LogWriter& writer);
  void detach();

  void log(Level level, std::string_view message);
  void info(std::string_view m) { log(Level::info, m); }
  void warn(std::string_view m) { log(Level::warn, m); }
  void error(std::string_view m) { log(Level::error, m); }

 private:
  std::unique_ptr<LogFile> file_;  // null: stderr (or attached)
  std::string path_;               // of the file, when logging to one
  LogWriter* writer_ = nullptr;
  std::uint64_t stream_ = 0;       // the file's stream in writer_
  std::size_t in_flight_ = 0;      // bytes handed to writer_, not yet written
  std::uint64_t dropped_ = 0;      // bytes not handed over: too many in flight
};

// An RFC 3339 UTC time with milliseconds, e.g. "2026-11-22T10:00:00.123Z".
std::string rfc3339_now();

}  // namespace vigil
