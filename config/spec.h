// The validated, plain form of a vigil configuration: what the YAML loader produces and
// what the rest of vigil consumes. No YAML types leak past this header.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vigil::config {

using Duration = std::chrono::milliseconds;

// A place in a config file. line and column are 1-based; 0 means "no position"
// (a file that cannot be read, an include that matches nothing).
struct Location {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:col", or "file" when there is no position.
  std::string str() const;

  bool operator==(const Location&) const = default;
};

// One problem found while loading: "file:line:col: message", or "file: message"
// when there is no position.
struct Diagnostic {
  Location where;
  std::string message;

  std::string str() const;
};

enum class RestartPolicy { always, on_failure, never };

struct Backoff {
  Duration initial{1000};
  Duration max{60000};
  double factor = 2.0;

  bool operator==(const Backoff&) const = default;
};

// Where one of a job's output streams goes.
struct Output {
  enum class Kind {
    file,    // append to `path`
    discard, // "null": thrown away
    merge,   // stderr only ("stdout"): same destination as stdout
  };
  Kind kind = Kind::file;
  std::string path;  // absolute, for Kind::file

  bool operator==(const Output&) const = default;
};

struct JobSpec {
  std::string name;
  // The program and its arguments. For a string command this is
  // {"/bin/sh", "-c", <string>} and `shell` is true.
  std::vector<std::string> argv;
  bool shell = false;
  std::string cwd = "/";
  std::optional<mode_t> umask;  // unset: the daemon's umask
  // Added to (or overriding) the daemon's environment, in file order, already expanded.
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<std::string> user;
  std::optional<std::string> group;
  Output stdout_log;
  Output stderr_log;
  std::uint64_t log_max_size = 10 * 1024 * 1024;  // bytes; 0 = never rotate
  int log_backups = 5;
  bool log_timestamps = false;
  bool autostart = true;
  RestartPolicy restart = RestartPolicy::on_failure;
  std::vector<int> success_exit_codes{0};
  Duration start_seconds{1000};
  int start_retries = 3;
  Backoff backoff;
  int stop_signal = 15;  // SIGTERM
  Duration stop_timeout{10000};
  bool kill_group = true;

  // Where the job was defined (the position of its key under `jobs:`). Not part of the
  // job's identity: moving a job to another file does not make it "changed" on reload.
  Location defined_at;

  // Equality over everything that affects how the job runs (all but defined_at).
  bool same_definition(const JobSpec& other) const;
};

// The daemon's own log (SupervisorSpec::log) rotates like a job's: at this size, keeping
// this many backups (log.1 .. log.5). The loader makes sure no other setting names one
// of them.
constexpr std::uint64_t kDaemonLogMaxSize = 10 * 1024 * 1024;
constexpr int kDaemonLogBackups = 5;
// vigild writes its pidfile to the pidfile's path with this appended, then renames it
// into place; that file is not free for another setting either.
constexpr const char* kPidfileTempSuffix = ".new";

struct SupervisorSpec {
  std::string socket;
  mode_t socket_mode = 0600;
  std::optional<std::string> socket_group;
  std::string pidfile;
  std::string log;      // the daemon's own log
  std::string log_dir;  // default folder for job logs
  mode_t umask = 0022;
  Duration shutdown_timeout{30000};
  std::vector<std::string> include;  // the patterns as written
};

struct Config {
  std::string path;  // absolute path of the main file
  SupervisorSpec supervisor;
  std::vector<JobSpec> jobs;  // in definition order: main file first, then includes
  std::vector<std::string> files;  // every file that was read, main file first
};

}  // namespace vigil::config
