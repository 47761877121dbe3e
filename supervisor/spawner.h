// Starts job processes: our own clone + exec (not uv_spawn, which has no umask, no process
// group of our choosing and reaps its own children). Everything that can fail is checked
// in the parent where it can be; what fails in the child (chdir, setuid, exec) comes back
// as the job's failure reason, never as an anonymous exit 127.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "spec.h"

namespace vigil {

struct ChildStdio;

struct SpawnResult {
  pid_t pid = 0;      // > 0 on success
  std::string error;  // why not, otherwise
};

// Starts children in batches: start() each, then collect() the outcomes. The children of
// a batch exec concurrently with each other and with the daemon; collect() returns once
// every one of them has exec'd (or failed, and been reaped).
class Spawner {
 public:
  // `base_env` is the environment every job starts from (the daemon's, less vigild's own
  // variables); `umask` the daemon's, for jobs that set none.
  // `nofile` is the RLIMIT_NOFILE that vigild was started with: vigild raises its own to
  // serve many clients and jobs, but jobs get the limit they would have had without it.
  // `daemon_id` makes the mark each job's processes carry (strays.h).
  Spawner(std::vector<std::string> base_env, mode_t umask, struct rlimit nofile,
          std::string daemon_id);
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Starts `job` with `io` as its stdout and stderr (see job_output.h), marked as its
  // run number `run` (strays.h). A child that was started takes them over (and closes
  // them once it has exec'd); otherwise `io` keeps them.
  void start(const std::string& job, const config::JobSpec& spec, ChildStdio& io,
             std::uint64_t run);

  struct Outcome {
    std::string job;
    SpawnResult result;
  };
  // The outcome of every start() since the last collect(), in order.
  std::vector<Outcome> collect();
  bool idle() const { return in_flight_.empty() && done_.empty(); }

  // Variables of vigild's own that no job should see (NOTIFY_SOCKET and the like).
  static bool is_internal_variable(const std::string& name);

  struct Child;  // one start(), until it is collected

 private:
  std::string plan(Child& c, const config::JobSpec& spec, const ChildStdio& io, std::uint64_t run);
  void settle_oldest();
  // Whether a child cloned with CLONE_FILES can take a table of its own (spawner.cc).
  static bool probe_shared_files();

  std::vector<std::string> base_env_;
  std::string daemon_id_;
  mode_t umask_;
  struct rlimit nofile_;
  int devnull_ = -1;
  bool shared_files_ = true;                      // clone with CLONE_FILES (probe_shared_files)
  std::deque<std::unique_ptr<Child>> in_flight_;  // started, maybe not yet exec'd
  std::vector<Outcome> done_;                     // settled, not yet collected
  std::vector<std::unique_ptr<Child>> spare_;     // for the next start()
  // PATH lookups of this batch: PATH, '\0', the command's name -> its path, or "".
  std::unordered_map<std::string, std::string> found_in_path_;
};

// Finds `file` the way execvp would, in `path` (colon-separated). Returns "" if absent.
std::string find_in_path(const std::string& file, const std::string& path);

}  // namespace vigil
