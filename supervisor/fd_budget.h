// vigild's descriptor budget: how many descriptors a config's jobs need against
// RLIMIT_NOFILE. It is what `vigild --check`, start-up and reload warn about when the
// jobs cannot all run at once, how many job log files the log writer keeps open at a
// time, and how far vigild grows its descriptor table before its threads start. Pure
// arithmetic over the config: no system call but reading the limit.
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <string>
#include <vector>

#include "spec.h"

namespace vigil {

// Children between clone and exec at once (the spawner waits for the oldest beyond it).
// Each holds the job's end of its pipes and both ends of its report pipe meanwhile.
inline constexpr std::size_t kMaxSpawnsInFlight = 64;

struct FdBudget {
  // What vigild holds whatever the jobs: stdio, the loop's own descriptors, the control
  // socket, the pidfile, the daemon log, the orphan guard's pipe and the like.
  static constexpr std::size_t kOwn = 32;
  // Room kept for clients of the control socket (more may connect while there is room).
  static constexpr std::size_t kClients = 64;
  // Log files kept open at least, however tight the limit: a few busy jobs never wait
  // for a reopen.
  static constexpr std::size_t kMinOpenLogs = 64;

  std::size_t jobs = 0;
  // Pipes vigild reads while every job runs: one per logged stream, and none for a
  // stderr merged into stdout (stderr: stdout) or discarded ("null").
  std::size_t pipes = 0;
  // Jobs whose stderr has a pipe (and a log file) of its own.
  std::size_t split_stderr = 0;
  // Log files the jobs write to: one per logged stream.
  std::size_t logs = 0;

  // Everything but the jobs' pipes and log files, with as many spawns in flight as can be.
  std::size_t overhead() const;
  // Descriptors for every job running at once, with a few log files open.
  std::size_t need() const;
  // How many log files may be open at once under `limit`: what is left once every pipe
  // and the overhead have theirs, and never fewer than kMinOpenLogs. Files beyond it are
  // closed, least recently written first, and reopened on their next write.
  std::size_t open_logs(rlim_t limit) const;
  // How many long-lived descriptors (pipes and log files, see fsutil.h) to size the
  // table for up front.
  std::size_t long_lived(rlim_t limit) const;
  // "" when the jobs fit in `limit`; otherwise the numbers and what to do, e.g.
  // "10000 jobs need about 20416 descriptors; the limit is 20000: raise LimitNOFILE
  // (ulimit -Hn) or merge stderr (stderr: stdout) in the 10000 jobs that log it apart".
  std::string shortfall(rlim_t limit) const;
};

FdBudget fd_budget(const std::vector<config::JobSpec>& jobs);

// The RLIMIT_NOFILE vigild runs with: it raises its soft limit to the hard one at start.
rlim_t daemon_fd_limit();

}  // namespace vigil
