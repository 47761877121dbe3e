// Finding what a job left beyond its leader's process group, without cgroups.
//
// Every process a job starts carries two variables in its environment, which its
// descendants inherit: VIGIL_JOB (the job's name) and VIGIL_RUN (this vigild's id and the
// run's serial number). A process that leaves the job's process group (setsid, a double
// fork) is out of reach of a signal to the group, and once its parent has exited nothing
// in its ancestry says which job it came from: the mark does. vigild is a child
// subreaper, so such a process, once orphaned, is vigild's own child. find() reads
// vigild's children, keeps those that carry this vigild's mark and are not job leaders,
// and adds every process below them. What it costs when no job escapes: one read of
// vigild's list of children.
//
// Best effort: a process that clears or overwrites its environment (env -i, some
// setproctitle tricks) is not found, and one whose parent lives on is found only once
// that parent has exited. The orphan guard (guard_main.cc) scans /proc for the same
// mark after vigild is killed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

// The variables of the mark (docs/guarantees.md).
inline constexpr std::string_view kJobVariable = "VIGIL_JOB";
inline constexpr std::string_view kRunVariable = "VIGIL_RUN";

struct Mark {
  std::string job;
  std::uint64_t run = 0;
};

// The mark of `daemon_id` in an environment as /proc/PID/environ has it (NUL-separated
// NAME=value entries), or nothing: not marked, or marked by another vigild.
std::optional<Mark> parse_mark(std::string_view env, std::string_view daemon_id);

// The entries that mark run `run` of `job`: "VIGIL_JOB=web", "VIGIL_RUN=<id>-<run>".
std::vector<std::string> mark_entries(std::string_view daemon_id, const std::string& job,
                                      std::uint64_t run);

// A new id for this vigild: 16 hex digits, from the kernel's random source.
std::string new_daemon_id();

class StrayFinder {
 public:
  explicit StrayFinder(std::string daemon_id) : id_(std::move(daemon_id)) {}
  const std::string& daemon_id() const { return id_; }

  struct Found {
    pid_t pid = 0;
    pid_t pgid = 0;
    unsigned long long start = 0;  // start time (clock ticks since boot): the process's identity
    Mark mark;                     // its own, or its marked ancestor's below vigild
  };
  // Every live process below vigild's children that carry this vigild's mark, except
  // children for which `known` is true (job leaders, the guard).
  std::vector<Found> find(const std::function<bool(pid_t)>& known) const;

  // Sends `signo` to `pid` if it is still the process that started at `start`.
  static bool signal(pid_t pid, unsigned long long start, int signo);

 private:
  std::string id_;
};

}  // namespace vigil
