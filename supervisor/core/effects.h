// The vocabulary between the pure core and the daemon: time going in, effects coming out.
// The core never reads a clock or makes a syscall; it is handed an Instant and appends
// Effects, which the daemon carries out (and tests inspect).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vigil::core {

// A moment, on both clocks: `mono` (milliseconds, never jumps) for every duration and
// deadline, `unix_seconds` only for what people read (status `since`, event times).
struct Instant {
  std::chrono::milliseconds mono{0};
  double unix_seconds = 0;

  Instant operator+(std::chrono::milliseconds d) const {
    return {mono + d, unix_seconds + static_cast<double>(d.count()) / 1000.0};
  }
};

enum class State { stopped, starting, running, backoff, stopping, exited, fatal };
std::string_view to_string(State s);

// How a process ended, as waitpid reported it.
struct ExitStatus {
  bool signaled = false;
  int value = 0;  // exit code, or signal number when signaled

  static ExitStatus code(int c) { return {false, c}; }
  static ExitStatus signal(int s) { return {true, s}; }
  bool operator==(const ExitStatus&) const = default;
};
// "exited with status 1", "killed by signal KILL".
std::string describe(const ExitStatus& e);

// A process of a job that the daemon found beyond its leader's reach: one that carries the
// job's mark (docs/guarantees.md) and was left behind by a run whose leader has exited.
struct Stray {
  pid_t pid = 0;
  bool left_group = false;  // not in the process group its run's leader led
  bool operator==(const Stray&) const = default;
};

// --- Effects: what the daemon must do. ---

// Fork and exec the job now; report back with Supervisor::spawned or spawn_failed. `run`
// numbers the job's spawns: its processes carry it (strays.h), so what an earlier run
// left is told apart from the running one.
struct Spawn {
  std::string job;
  std::uint64_t run = 0;
};
// Send a signal to a process, or to the process group it leads.
struct Kill {
  std::string job;
  pid_t pid;
  int signo;
  bool group;
};
// Send a signal to processes of the job that a signal to its leader's process group does
// not reach (Job::strays_found). The daemon signals each only while it is still the
// process it found: a pid that has gone and been reused is left alone.
struct KillStrays {
  std::string job;
  std::vector<pid_t> pids;
  int signo;
};
// Arm the job's one timer to fire at `deadline` (replacing any earlier deadline).
struct SetTimer {
  std::string job;
  std::chrono::milliseconds deadline;
};
// Disarm the job's timer.
struct ClearTimer {
  std::string job;
};
// A job changed state: log it and tell `events` subscribers.
struct StateChanged {
  std::string job;
  State from;
  State to;
  pid_t pid;  // the process concerned (the new one, or the one that exited), 0 if none
  std::optional<ExitStatus> exit;
  std::string reason;
  double time = 0;  // unix seconds
};
// A job was removed from the table (reload); the daemon frees what it holds for it.
struct Forget {
  std::string job;
};
// A start/stop/restart request that was waiting now has its answer.
struct Outcome {
  std::string job;
  bool ok = false;
  State state = State::stopped;
  pid_t pid = 0;
  std::string message;  // "running", "exited with status 1 after 0.2s"
  std::string log;      // where to look, or empty
};
struct Reply {
  std::uint64_t waiter;
  std::vector<Outcome> outcomes;
};

using Effect =
    std::variant<Spawn, Kill, KillStrays, SetTimer, ClearTimer, StateChanged, Forget, Reply>;

// Effects are appended by the core and consumed in order by the daemon, which may feed
// further events back while it drains them (a Spawn answered by spawned()).
using Effects = std::deque<Effect>;

}  // namespace vigil::core
