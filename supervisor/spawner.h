// Starts job processes: our own fork + exec (not uv_spawn, which has no umask, no process
// group of our choosing and reaps its own children). Everything that can fail is checked
// in the parent where it can be; what fails in the child (chdir, setuid, exec) comes back
// through a close-on-exec pipe as the job's failure reason, never as an anonymous exit 127.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "spec.h"

namespace vigil {

struct ChildStdio;

struct SpawnResult {
  pid_t pid = 0;      // > 0 on success
  std::string error;  // why not, otherwise
};

class Spawner {
 public:
  // `base_env` is the environment every job starts from (the daemon's, less vigild's own
  // variables); `umask` the daemon's, for jobs that set none.
  // `nofile` is the RLIMIT_NOFILE that vigild was started with: vigild raises its own to
  // serve many clients and jobs, but jobs get the limit they would have had without it.
  Spawner(std::vector<std::string> base_env, mode_t umask, struct rlimit nofile);

  // Starts the job with `io` as its stdout and stderr (see job_output.h).
  SpawnResult spawn(const config::JobSpec& spec, const ChildStdio& io);

  // Variables of vigild's own that no job should see (NOTIFY_SOCKET and the like).
  static bool is_internal_variable(const std::string& name);

 private:
  std::vector<std::string> base_env_;
  mode_t umask_;
  struct rlimit nofile_;
  int devnull_ = -1;
};

// Finds `file` the way execvp would, in `path` (colon-separated). Returns "" if absent.
std::string find_in_path(const std::string& file, const std::string& path);

}  // namespace vigil
