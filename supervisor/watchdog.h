// The orphan guard: a tiny process that outlives vigild to make sure jobs do not. vigild
// tells it, over a pipe, the process group of every job it starts and of every job that
// ends. If vigild dies without saying goodbye (kill -9, a crash), the pipe reaches EOF
// and the guard SIGKILLs every process group still on its list, then every process that
// carries this vigild's mark (strays.h: those that left their job's group), then exits:
// no job and no process of a job is left running unsupervised. On a clean exit vigild
// says goodbye first, and the guard just exits.
//
// The guard is a program of its own, vigild-guard (guard_main.cc): a few dozen lines on
// libc alone, so it costs about 100 KB, not a second copy of vigild. It ignores the
// signals a service manager sends to a whole group, so only vigild's death or SIGKILL
// ends it.
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

  // The mark of this vigild's jobs (strays.h): the guard also kills every process that
  // carries it, whatever its process group. Set before the first restart().
  void set_daemon_id(std::string id) { daemon_id_ = std::move(id); }

  // The guard's pid (0 when none): vigild restarts it when it exits.
  pid_t pid() const { return pid_; }
  // The guard has been reaped: it has no pid until restart().
  void exited() { pid_ = 0; }
  // Starts a new guard (the first, or after one exited) and tells it every group it
  // must watch. Returns "" or the reason.
  std::string restart();

  void watch(pid_t pgid);
  void unwatch(pid_t pgid);
  // A clean exit: the guard is told to kill nothing and leave.
  void goodbye();

  // The guard program's path: beside vigild, else in vigil's libexec folder.
  static std::string program();

 private:
  std::string start();
  void send(int value);

  pid_t pid_ = 0;
  int fd_ = -1;  // write end of the pipe to the guard
  std::set<pid_t> groups_;
  std::string daemon_id_;
};

}  // namespace vigil
