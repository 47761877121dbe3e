// The orphan guard: a tiny process that outlives vigild to make sure jobs do not. vigild
// tells it, over a pipe, the process group of every job it starts and of every job that
// ends. If vigild dies without saying goodbye (kill -9, a crash), the pipe reaches EOF
// and the guard SIGKILLs every process group still on its list, then exits: no job and no
// process of a job's group is left running unsupervised. On a clean exit vigild says
// goodbye first, and the guard just exits.
//
// The guard is vigild itself, re-executed with --internal-watchdog (so it is a fresh,
// small process, not a copy of the daemon's memory). It ignores the signals a service
// manager sends to a whole group, so only vigild's death or SIGKILL ends it.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>

namespace vigil {

class Watchdog {
 public:
  Watchdog() = default;
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts the guard process. Returns "" or the reason.
  std::string start();
  // The guard's pid (0 when none): vigild restarts it when it exits.
  pid_t pid() const { return pid_; }
  // The guard exited: start a new one and tell it every group it must watch.
  std::string restart();

  void watch(pid_t pgid);
  void unwatch(pid_t pgid);
  // A clean exit: the guard is told to kill nothing and leave.
  void goodbye();

  // The guard's main loop (vigild --internal-watchdog): reads from fd 3 until EOF.
  static int run_guard();

 private:
  void send(int value);

  pid_t pid_ = 0;
  int fd_ = -1;  // write end of the pipe to the guard
  std::set<pid_t> groups_;
};

}  // namespace vigil
